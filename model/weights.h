// Where a module's weights come from: a checkpoint (WeightStore, official names under a prefix
// such as "model.sam_model.") or, in the parity runner, a golden case (parity/golden_weights.h).
// Models ask for names relative to themselves, with the shape the config implies.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "runtime/runtime.h"

namespace dsocr {

// What a weight matrix is for: the int8/int4 storages quantise the language model's linears
// (attention projections, dense MLP, shared and routed experts) and nothing else.
enum class MatrixRole { other, lm_linear };

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool has(const std::string& name) const = 0;
  // Uploads the tensor as fp32; throws Error naming it when absent or of another shape.
  virtual Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const = 0;
  virtual std::string describe(const std::string& name) const = 0;  // for messages
  // A weight matrix read only by linear(), the expert kernels or the embedding lookup: kept in
  // the storage's dtype (WeightStorage) where the source allows it; fp32 otherwise.
  virtual Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected,
                             MatrixRole role = MatrixRole::other) const {
    (void)role;
    return load(rt, name, expected);
  }
};

// How weight matrices are kept on the device (norms, biases and tables are always fp32):
//   bf16  as stored (the official checkpoint's bf16; f16 stays f16): exact. `compact` is its alias.
//   fp16  converted to IEEE half; a tensor with a value beyond half's range stays bf16 (a note).
//   int8, int4  the language model's linears group-quantised (runtime/quant.h); every other
//         matrix as bf16. A matrix that cannot be quantised (a value beyond fp16, an input size
//         that is not a multiple of 32) stays bf16 (a note).
//   f32   everything widened (the reference's arithmetic on fp32 weights; twice bf16's memory).
// A checkpoint written quantised (dsocr convert) loads its quantised matrices as they are, under
// any storage but f32 (which dequantises them).
enum class WeightStorage { bf16, fp16, int8, int4, f32, compact = bf16 };
WeightStorage weight_storage_from_string(const std::string& s);  // the names above
const char* weight_storage_name(WeightStorage s);                // "bf16", "fp16", ...
DType weight_storage_dtype(WeightStorage s, MatrixRole role);    // bf16 for "as stored"

class StoreWeights : public WeightSource {
 public:
  StoreWeights(const WeightStore& store, std::string prefix, WeightStorage storage = WeightStorage::compact)
      : store_(store), prefix_(std::move(prefix)), storage_(storage) {}
  bool has(const std::string& name) const override { return store_.has(prefix_ + name); }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    return store_.upload(rt, prefix_ + name, expected);
  }
  Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected,
                     MatrixRole role = MatrixRole::other) const override;
  std::string describe(const std::string& name) const override { return "checkpoint tensor " + prefix_ + name; }
  // What the storage could not do as asked (a tensor kept in bf16, and why), in load order.
  const std::vector<std::string>& notes() const { return *notes_; }

 private:
  Tensor load_quantized_file(Runtime& rt, const std::string& full, const Shape& expected) const;
  const WeightStore& store_;
  std::string prefix_;
  WeightStorage storage_;
  std::shared_ptr<std::vector<std::string>> notes_ = std::make_shared<std::vector<std::string>>();
};

// A source seen under a further prefix ("blocks.3." of the SAM weights, ...).
class SubWeights : public WeightSource {
 public:
  SubWeights(const WeightSource& base, std::string prefix) : base_(base), prefix_(std::move(prefix)) {}
  bool has(const std::string& name) const override { return base_.has(prefix_ + name); }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    return base_.load(rt, prefix_ + name, expected);
  }
  Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected,
                     MatrixRole role = MatrixRole::other) const override {
    return base_.load_matrix(rt, prefix_ + name, expected, role);
  }
  std::string describe(const std::string& name) const override { return base_.describe(prefix_ + name); }

 private:
  const WeightSource& base_;
  std::string prefix_;
};

}  // namespace dsocr

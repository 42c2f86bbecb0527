// Where a module's weights come from: a checkpoint (WeightStore, official names under a prefix
// such as "model.sam_model.") or, in the parity runner, a golden case (parity/golden_weights.h).
// Models ask for names relative to themselves, with the shape the config implies.
#pragma once
#include <string>

#include "model/safetensors.h"
#include "runtime/runtime.h"

namespace dsocr {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual bool has(const std::string& name) const = 0;
  // Uploads the tensor as fp32; throws Error naming it when absent or of another shape.
  virtual Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const = 0;
  virtual std::string describe(const std::string& name) const = 0;  // for messages
  // A weight matrix read only by linear(), the expert kernels or the embedding lookup: kept in
  // the compact dtype it is stored in (bf16 for the official checkpoint: exact, half the bytes)
  // where the source has one and compact storage is on; fp32 otherwise.
  virtual Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected) const {
    return load(rt, name, expected);
  }
};

// How weights are kept on the device: `compact` keeps bf16/f16 matrices as stored; `f32` widens
// everything (the reference's arithmetic on fp32 weights; twice the memory).
enum class WeightStorage { compact, f32 };
WeightStorage weight_storage_from_string(const std::string& s);  // "compact"/"bf16" or "f32"
const char* weight_storage_name(WeightStorage s);

class StoreWeights : public WeightSource {
 public:
  StoreWeights(const WeightStore& store, std::string prefix, WeightStorage storage = WeightStorage::compact)
      : store_(store), prefix_(std::move(prefix)), storage_(storage) {}
  bool has(const std::string& name) const override { return store_.has(prefix_ + name); }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    return store_.upload(rt, prefix_ + name, expected);
  }
  Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected) const override;
  std::string describe(const std::string& name) const override { return "checkpoint tensor " + prefix_ + name; }

 private:
  const WeightStore& store_;
  std::string prefix_;
  WeightStorage storage_;
};

// A source seen under a further prefix ("blocks.3." of the SAM weights, ...).
class SubWeights : public WeightSource {
 public:
  SubWeights(const WeightSource& base, std::string prefix) : base_(base), prefix_(std::move(prefix)) {}
  bool has(const std::string& name) const override { return base_.has(prefix_ + name); }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    return base_.load(rt, prefix_ + name, expected);
  }
  Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& expected) const override {
    return base_.load_matrix(rt, prefix_ + name, expected);
  }
  std::string describe(const std::string& name) const override { return base_.describe(prefix_ + name); }

 private:
  const WeightSource& base_;
  std::string prefix_;
};

}  // namespace dsocr

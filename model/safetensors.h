// Safetensors checkpoints, memory-mapped, with a validated header; sharded checkpoints through
// model.safetensors.index.json. The one storage abstraction for weights: WeightStore.
//
// Header validation (each failure names the file and the tensor): the 8-byte header length within
// the file and at most 100 MiB, valid JSON object, every tensor with a known dtype, a shape of
// non-negative integers, data_offsets [begin, end] inside the data region with end - begin equal
// to numel * dtype size, and no two tensors overlapping.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace dsocr {

enum class StDType : uint8_t { f32, f16, bf16, f64, i64, i32, i16, i8, u8, u32, boolean };
const char* st_dtype_name(StDType t);
size_t st_dtype_size(StDType t);

// A tensor inside a mapped file (valid while its file is alive).
struct TensorView {
  std::string name;
  StDType dtype = StDType::f32;
  Shape shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  std::string file;
  int64_t numel() const { return shape_numel(shape); }
};

// One .safetensors file, mmapped read-only.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error on any header problem
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of a checkpoint directory (single file or sharded with an index), by name.
class WeightStore {
 public:
  // dir holds model.safetensors.index.json (sharded) or *.safetensors files.
  static WeightStore open_dir(const std::string& dir);
  static WeightStore open_files(const std::vector<std::string>& files);

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorView& get(const std::string& name) const;  // throws Error naming the missing tensor
  // get() plus a shape check: throws Error "tensor X has shape [..], the config implies [..]".
  const TensorView& get(const std::string& name, const Shape& expected) const;
  std::vector<std::string> names() const;
  size_t size() const { return index_.size(); }
  uint64_t total_bytes() const;

  // Host conversion to fp32 (from f32, f16, bf16).
  static std::vector<float> to_f32(const TensorView& t);
  // Uploads as fp32 (or fp16 storage when dtype == DType::f16).
  // Uploads as dtype: f32 (converted), f16 (converted, or as stored), bf16 only from BF16 (raw bits).
  Tensor upload(Runtime& rt, const std::string& name, const Shape& expected, DType dtype = DType::f32) const;
  // The tensor's dtype in the file (after a shape check).
  StDType stored_dtype(const std::string& name, const Shape& expected) const { return get(name, expected).dtype; }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

}  // namespace dsocr

// Device buffers with RAII and memory accounting, and Tensor: a buffer plus shape and dtype.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cl.h"

namespace dsocr {

enum class DType : uint8_t { f32, f16, i32 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2,3,4]"

// Current and peak bytes of device memory held by one Runtime's buffers.
struct MemoryStats {
  uint64_t current = 0, peak = 0, allocations = 0;
};

// One cl_mem; releases it and updates the accounting when destroyed. Move-only.
class Buffer {
 public:
  Buffer(cl::Buffer mem, size_t bytes, std::shared_ptr<MemoryStats> stats);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const cl::Buffer& mem() const { return mem_; }
  size_t bytes() const { return bytes_; }

 private:
  cl::Buffer mem_;
  size_t bytes_;
  std::shared_ptr<MemoryStats> stats_;
};

// A dense, C-order array on the device. Copies share the buffer.
struct Tensor {
  std::shared_ptr<Buffer> buffer;
  Shape shape;
  DType dtype = DType::f32;

  int64_t numel() const { return shape_numel(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int rank() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  const cl::Buffer& mem() const;
  bool defined() const { return buffer != nullptr; }
};

// The same buffer seen with another shape of as many elements (throws Error otherwise).
Tensor reshaped(const Tensor& t, const Shape& shape);

}  // namespace dsocr

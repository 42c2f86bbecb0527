// Device buffers with RAII and memory accounting, and Tensor: a buffer plus shape and dtype.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cl.h"

namespace dsocr {

// bf16: raw bfloat16 bits (the checkpoint's storage); kernels widen with a 16-bit shift, exact.
// q8, q4: group-wise affine quantised weights (runtime/quant.h): blocks of 32 consecutive elements
// of a row, each block its codes then an fp16 scale and an fp16 offset (36 and 20 bytes).
enum class DType : uint8_t { f32, f16, bf16, i32, q8, q4 };
size_t dtype_size(DType t);  // bytes of one element; 0 for the blocked q8/q4 (see dtype_bytes)
const char* dtype_name(DType t);
bool dtype_is_quantized(DType t);
// Bytes of n elements; for q8/q4, n must be a multiple of the 32-element block (Error otherwise).
size_t dtype_bytes(DType t, int64_t n);

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2,3,4]"

// Device memory of one Runtime. current: bytes of live buffers; cached: bytes of freed buffers
// kept for reuse (BufferPool); peak_held: the most ever held, live and cached together.
struct MemoryStats {
  uint64_t current = 0, peak = 0, allocations = 0;
  uint64_t cached = 0, peak_held = 0, reused = 0;
  void note_peak() {
    if (current > peak) peak = current;
    if (current + cached > peak_held) peak_held = current + cached;
  }
};

// Freed buffers kept for reuse, by size: a decode step allocates the same intermediates every
// token, and clCreateBuffer/clReleaseMemObject cost far more than a kernel launch on some
// drivers. Safe with one in-order queue: a buffer handed back while commands that use it are
// still queued can be handed out again, since whatever uses it next is enqueued after them.
class BufferPool {
 public:
  // Keeps at most `limit` bytes of freed buffers; a buffer that would go over is released.
  BufferPool(bool enabled, uint64_t limit) : enabled_(enabled), limit_(limit) {}
  ~BufferPool() { drain(); }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A cached buffer of at least `bytes` and at most a quarter more (its size in `got`), or null.
  cl_mem take(size_t bytes, size_t& got);
  // Keeps m (one reference, now owned by the pool), or releases it when pooling is off.
  void give(cl_mem m, size_t bytes);
  void drain();  // releases every cached buffer
  bool enabled() const { return enabled_; }

  MemoryStats stats;

 private:
  bool enabled_;
  uint64_t limit_;
  std::multimap<size_t, cl_mem> free_;
};

// One cl_mem; releases it (or hands it to its pool) and updates the accounting when destroyed.
// bytes: the size asked for (bounds checks); held: the size of the cl_mem (accounting).
class Buffer {
 public:
  Buffer(cl::Buffer mem, size_t bytes, std::shared_ptr<MemoryStats> stats);  // not pooled
  Buffer(cl::Buffer mem, size_t bytes, size_t held, std::shared_ptr<BufferPool> pool);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const cl::Buffer& mem() const { return mem_; }
  size_t bytes() const { return bytes_; }

 private:
  cl::Buffer mem_;
  size_t bytes_, held_;
  std::shared_ptr<MemoryStats> stats_;
  std::shared_ptr<BufferPool> pool_;
};

// A dense, C-order array on the device. Copies share the buffer.
struct Tensor {
  std::shared_ptr<Buffer> buffer;
  Shape shape;
  DType dtype = DType::f32;

  int64_t numel() const { return shape_numel(shape); }
  size_t bytes() const { return dtype_bytes(dtype, numel()); }
  int rank() const { return static_cast<int>(shape.size()); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  const cl::Buffer& mem() const;
  bool defined() const { return buffer != nullptr; }
};

// The same buffer seen with another shape of as many elements (throws Error otherwise).
Tensor reshaped(const Tensor& t, const Shape& shape);

// "[2,3,4] f32", or "undefined": a tensor as error messages name it.
std::string tensor_str(const Tensor& t);

}  // namespace dsocr

#include "runtime/tensor.h"

#include <fmt/format.h>

#include "runtime/error.h"

namespace dsocr {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::i32:
      return 4;
    case DType::q8:
    case DType::q4:
      return 0;
  }
  return 0;
}

bool dtype_is_quantized(DType t) { return t == DType::q8 || t == DType::q4; }

size_t dtype_bytes(DType t, int64_t n) {
  if (!dtype_is_quantized(t)) return static_cast<size_t>(n) * dtype_size(t);
  constexpr int64_t kBlock = 32;  // runtime/quant.h kQuantGroup
  if (n % kBlock != 0)
    throw Error(fmt::format("{} tensor of {} elements: not a whole number of {}-element blocks", dtype_name(t), n,
                            kBlock));
  return static_cast<size_t>(n / kBlock) * (t == DType::q8 ? 36 : 20);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::i32:
      return "i32";
    case DType::q8:
      return "q8";
    case DType::q4:
      return "q4";
  }
  return "?";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

std::string tensor_str(const Tensor& t) {
  return t.defined() ? fmt::format("{} {}", shape_str(t.shape), dtype_name(t.dtype)) : "undefined";
}

Buffer::Buffer(cl::Buffer mem, size_t bytes, std::shared_ptr<MemoryStats> stats)
    : mem_(std::move(mem)), bytes_(bytes), held_(bytes), stats_(std::move(stats)) {
  stats_->current += held_;
  stats_->allocations++;
  stats_->note_peak();
}

Buffer::Buffer(cl::Buffer mem, size_t bytes, size_t held, std::shared_ptr<BufferPool> pool)
    : mem_(std::move(mem)), bytes_(bytes), held_(held), stats_(pool, &pool->stats), pool_(std::move(pool)) {
  stats_->current += held_;
  stats_->allocations++;
  stats_->note_peak();
}

Buffer::~Buffer() {
  stats_->current -= held_;
  if (pool_ && mem_() && clRetainMemObject(mem_()) == CL_SUCCESS) pool_->give(mem_(), held_);
}

cl_mem BufferPool::take(size_t bytes, size_t& got) {
  auto it = free_.lower_bound(bytes);
  if (it == free_.end() || it->first > bytes + bytes / 4) return nullptr;
  got = it->first;
  cl_mem m = it->second;
  free_.erase(it);
  stats.cached -= got;
  stats.reused++;
  return m;
}

void BufferPool::give(cl_mem m, size_t bytes) {
  if (!enabled_ || stats.cached + bytes > limit_) {
    clReleaseMemObject(m);
    return;
  }
  free_.emplace(bytes, m);
  stats.cached += bytes;
  stats.note_peak();
}

void BufferPool::drain() {
  for (auto& [bytes, m] : free_) clReleaseMemObject(m);
  free_.clear();
  stats.cached = 0;
}

const cl::Buffer& Tensor::mem() const {
  if (!buffer) throw Error("tensor has no device buffer");
  return buffer->mem();
}

Tensor reshaped(const Tensor& t, const Shape& shape) {
  if (shape_numel(shape) != t.numel())
    throw Error("cannot view a tensor " + shape_str(t.shape) + " as " + shape_str(shape));
  Tensor v = t;
  v.shape = shape;
  return v;
}

}  // namespace dsocr

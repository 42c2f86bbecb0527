#include "runtime/tensor.h"

#include <fmt/format.h>

#include "runtime/error.h"

namespace dsocr {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
      return 2;
    case DType::i32:
      return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
  }
  return "?";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

Buffer::Buffer(cl::Buffer mem, size_t bytes, std::shared_ptr<MemoryStats> stats)
    : mem_(std::move(mem)), bytes_(bytes), stats_(std::move(stats)) {
  stats_->current += bytes_;
  stats_->allocations++;
  if (stats_->current > stats_->peak) stats_->peak = stats_->current;
}

Buffer::~Buffer() { stats_->current -= bytes_; }

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

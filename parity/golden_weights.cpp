#include "parity/golden_weights.h"

#include <fmt/format.h>

namespace dsocr {

Tensor GoldenWeights::load(Runtime& rt, const std::string& name, const Shape& expected) const {
  auto it = c_.weights.find(prefix_ + name);
  if (it == c_.weights.end())
    throw GoldenError(fmt::format("{}: missing dataset /weights/{}", c_.path, prefix_ + name));
  const HostArray& a = it->second;
  if (a.shape != expected)
    throw GoldenError(fmt::format("{}: /weights/{} has shape {}, expected {}", c_.path, prefix_ + name,
                                  shape_str(a.shape), shape_str(expected)));
  if (a.kind != HostArray::Kind::f32)
    throw GoldenError(fmt::format("{}: /weights/{} must be float", c_.path, prefix_ + name));
  return rt.upload(a.f.data(), a.shape, DType::f32, prefix_ + name);
}

}  // namespace dsocr

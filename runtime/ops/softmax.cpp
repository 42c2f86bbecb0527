#include "runtime/ops/softmax.h"

#include <fmt/format.h>

namespace dsocr::ops {

void softmax(Runtime& rt, const Tensor& x, Tensor& y) {
  if (x.rank() < 1) throw Error("softmax: x must have at least one dimension");
  if (y.shape != x.shape || x.dtype != DType::f32 || y.dtype != DType::f32)
    throw Error(fmt::format("softmax: y {} must be f32 with the shape of x {}", shape_str(y.shape), shape_str(x.shape)));
  int64_t N = x.dim(-1), rows = x.numel() / std::max<int64_t>(N, 1);
  constexpr size_t wg = 256;
  auto& k = rt.kernel("softmax.cl", "softmax_f32");
  rt.launch(k, cl::NDRange(rows * wg), cl::NDRange(wg), x, y, static_cast<cl_int>(N));
}

}  // namespace dsocr::ops

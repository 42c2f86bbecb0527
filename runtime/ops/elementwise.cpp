#include "runtime/ops/elementwise.h"

#include <fmt/format.h>

namespace dsocr::ops {

void add(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y) {
  if (a.numel() != b.numel() || a.numel() != y.numel())
    throw Error(fmt::format("add: sizes differ: a {} b {} y {}", shape_str(a.shape), shape_str(b.shape), shape_str(y.shape)));
  size_t n = static_cast<size_t>(a.numel());
  auto& k = rt.kernel("elementwise.cl", "add_f32");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), a, b, y, static_cast<cl_int>(n));
}

void add_broadcast(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y) {
  if (b.numel() == 0 || a.numel() % b.numel() != 0 || a.numel() != y.numel())
    throw Error(fmt::format("add_broadcast: a {} must repeat b {} and match y {}", shape_str(a.shape),
                            shape_str(b.shape), shape_str(y.shape)));
  size_t n = static_cast<size_t>(a.numel());
  auto& k = rt.kernel("elementwise.cl", "add_bcast_f32");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), a, b, y, static_cast<cl_int>(n),
            static_cast<cl_int>(b.numel()));
}

}  // namespace dsocr::ops

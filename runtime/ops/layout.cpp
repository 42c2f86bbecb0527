#include "runtime/ops/layout.h"

#include <fmt/format.h>

namespace dsocr::ops {

void nchw_to_nhwc(Runtime& rt, const Tensor& x, Tensor& y) {
  if (x.rank() != 4) throw Error(fmt::format("nchw_to_nhwc: x must be [N,C,H,W], got {}", shape_str(x.shape)));
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  if (y.shape != Shape{N, H, W, C})
    throw Error(fmt::format("nchw_to_nhwc: y must be {}, got {}", shape_str({N, H, W, C}), shape_str(y.shape)));
  auto& k = rt.kernel("layout.cl", "nchw_to_nhwc_f32");
  rt.launch(k, cl::NDRange(round_up(C, 64), H * W, N), cl::NDRange(64, 1, 1), x, y, (cl_int)C, (cl_int)(H * W));
}

void nhwc_to_nchw(Runtime& rt, const Tensor& x, Tensor& y) {
  if (x.rank() != 4) throw Error(fmt::format("nhwc_to_nchw: x must be [N,H,W,C], got {}", shape_str(x.shape)));
  int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  if (y.shape != Shape{N, C, H, W})
    throw Error(fmt::format("nhwc_to_nchw: y must be {}, got {}", shape_str({N, C, H, W}), shape_str(y.shape)));
  auto& k = rt.kernel("layout.cl", "nhwc_to_nchw_f32");
  rt.launch(k, cl::NDRange(round_up(H * W, 64), C, N), cl::NDRange(64, 1, 1), x, y, (cl_int)C, (cl_int)(H * W));
}

}  // namespace dsocr::ops

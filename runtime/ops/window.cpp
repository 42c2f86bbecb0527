#include "runtime/ops/window.h"

#include <fmt/format.h>

namespace dsocr::ops {

void window_partition(Runtime& rt, const Tensor& x, int ws, Tensor& win) {
  if (x.rank() != 4 || ws <= 0) throw Error(fmt::format("window_partition: x must be [B,H,W,C], got {}", shape_str(x.shape)));
  int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  int64_t nh = ceil_div(H, ws), nw = ceil_div(W, ws);
  Shape want{B * nh * nw, ws, ws, C};
  if (win.shape != want)
    throw Error(fmt::format("window_partition: win must be {}, got {}", shape_str(want), shape_str(win.shape)));
  auto& k = rt.kernel("window.cl", "window_partition_f32");
  rt.launch(k, cl::NDRange(round_up(C, 64), ws * ws, B * nh * nw), cl::NDRange(64, 1, 1), x, win, (int)H, (int)W,
            (int)C, ws, (int)nh, (int)nw);
}

void window_unpartition_add(Runtime& rt, const Tensor& win, int ws, Tensor& x) {
  if (x.rank() != 4 || ws <= 0) throw Error(fmt::format("window_unpartition_add: x must be [B,H,W,C], got {}", shape_str(x.shape)));
  int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  int64_t nh = ceil_div(H, ws), nw = ceil_div(W, ws);
  Shape want{B * nh * nw, ws, ws, C};
  if (win.numel() != shape_numel(want))
    throw Error(fmt::format("window_unpartition_add: win must be {}, got {}", shape_str(want), shape_str(win.shape)));
  auto& k = rt.kernel("window.cl", "window_unpartition_add_f32");
  rt.launch(k, cl::NDRange(round_up(C, 64), W, B * H), cl::NDRange(64, 1, 1), win, x, (int)H, (int)W, (int)C, ws,
            (int)nh, (int)nw);
}

}  // namespace dsocr::ops

// SAM window partition / unpartition, fp32, channels-last.
//   window_partition_f32:      x [B,H,W,C] -> win [B*nh*nw, ws, ws, C], nh = ceil(H/ws), nw = ceil(W/ws);
//                              windows in window-row-major order per image; positions past H or W
//                              are zero (padding is not masked: its q/k/v become the qkv bias).
//   window_unpartition_add_f32: x [B,H,W,C] += win cropped back (the residual add of a SAM block).
// Index mapping: one work-item per channel element; global (C↑64, ws*ws or W, B*nh*nw or B*H).

__kernel void window_partition_f32(__global const float* x, __global float* win, int H, int W, int C, int ws, int nh,
                                   int nw) {
  int c = get_global_id(0), p = get_global_id(1), wi = get_global_id(2);
  if (c >= C || p >= ws * ws) return;
  int b = wi / (nh * nw), r = wi % (nh * nw);
  int h = (r / nw) * ws + p / ws, w = (r % nw) * ws + p % ws;
  float v = 0.0f;
  if (h < H && w < W) v = x[(((size_t)b * H + h) * W + w) * C + c];
  win[((size_t)wi * ws * ws + p) * C + c] = v;
}

__kernel void window_unpartition_add_f32(__global const float* win, __global float* x, int H, int W, int C, int ws,
                                         int nh, int nw) {
  int c = get_global_id(0), w = get_global_id(1), bh = get_global_id(2);
  if (c >= C || w >= W) return;
  int b = bh / H, h = bh % H;
  int wi = (b * nh + h / ws) * nw + w / ws, p = (h % ws) * ws + w % ws;
  x[(((size_t)b * H + h) * W + w) * C + c] += win[((size_t)wi * ws * ws + p) * C + c];
}

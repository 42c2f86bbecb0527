// Resampling with PyTorch's exact semantics, fp32 arithmetic.
//
//   resize_bicubic_aa_f32 (and its fallback pair resize_bicubic_aa_{h,v}_f32):
//     F.interpolate(x, (oh, ow), mode="bicubic", antialias=True, align_corners=False) as ATen's
//     separable CPU path: a horizontal pass x [NC,H,W] -> t [NC,H,ow], then a vertical pass
//     t -> y [NC,oh,ow]. Per axis (in -> out) the host computes for each output index i a tap window
//     (first input index, tap count n <= K) and the normalised Keys (a = -0.5) weights (ATen's
//     _compute_indices_min_size_weights_aa, in fp32 like ATen), so both passes are plain gathers:
//       t[r, ox]       = sum_{j<n(ox)} x[r, xmin(ox)+j]       * wx[ox*K+j]      (r = nc*H + h)
//       y[nc, oy, ox]  = sum_{j<n(oy)} t[nc, ymin(oy)+j, ox]  * wy[oy*K+j]
//     accumulated from the product j = 0 in order, as ATen's interpolate_aa_single_dim does. An axis
//     whose size does not change gets the identity taps (n = 1, w = 1: x * 1 is exact), which is
//     ATen's skipping of that axis.
//     All tables live in one int buffer `tab` (weights as float bits), at word offsets:
//       [0, 2*ow): x taps (xmin, n) | xw: [ow*Kx] x weights | yi: [2*oh] y taps | yw: [oh*Ky] y weights
//       | bd: bands [nb][4] = (oy0, oy1, ty0, ty1) for the fused kernel.
//   resize_bicubic_aa_f32: both passes in one launch. Work-group (band b, plane nc), global
//     (nb*256, NC): the horizontal pass computes rows [ty0, ty1) of t (every row the band's outputs
//     [oy0, oy1) read) into local memory `tl` [(ty1-ty0)*ow] (work-item l takes flat elements
//     e = l, l+256, ...: neighbouring work-items, neighbouring ox, reads of x coalesced), then the
//     vertical pass writes rows [oy0, oy1) of y from it (flat over (oy, ox), writes coalesced). Same
//     arithmetic, same order as the two-pass kernels: identical results. The host sizes the bands
//     (t tile <= 24 KiB, modest per-work-item loop counts) and falls back to the two kernels below
//     when a single output row does not fit.
//   resize_bicubic_aa_h_f32 / _v_f32: one work-item per output element (flat index, ox fastest) of
//     the horizontal pass (x -> t) and the vertical pass (t -> y).
//   resize_linear_f32: F.interpolate(x, out, mode="linear", align_corners=False) over the last axis of
//     x [rows, L] -> y [rows, out], scale = L/out (fp32, from the host):
//       src = max(scale*(o+0.5) - 0.5, 0); i0 = min(floor(src), L-1); i1 = i0 + (i0 < L-1);
//       lambda = clamp(src - i0, 0, 1); y = x[i0]*(1-lambda) + x[i1]*lambda   (ATen's fp32 formulas)
//     one work-item per output element, flat index g = r*out + o.
// Multiplies and adds are kept separate (FP_CONTRACT OFF) to follow ATen's scalar code; no tunables
// (resize_bicubic_aa_f32: work-groups of RS_WG = 256; the others 1-D, work-group size chosen by the host).
#pragma OPENCL FP_CONTRACT OFF

#define RS_WG 256  // work-group size of resize_bicubic_aa_f32

__kernel void resize_bicubic_aa_f32(__global const float* x, __global const int* tab, __global float* y, int H, int W,
                                    int oh, int ow, int Kx, int Ky, int xw, int yi, int yw, int bd, __local float* tl) {
  int l = get_local_id(0);
  __global const int* band = tab + bd + 4 * get_group_id(0);
  int oy0 = band[0], oy1 = band[1], ty0 = band[2], ty1 = band[3];
  size_t nc = get_global_id(1);
  __global const float* xc = x + (nc * H + ty0) * W;
  int nt = (ty1 - ty0) * ow;
  for (int e = l; e < nt; e += RS_WG) {
    int tr = e / ow, ox = e - tr * ow;
    int xmin = tab[2 * ox], n = tab[2 * ox + 1];
    __global const float* src = xc + (size_t)tr * W + xmin;
    __global const int* w = tab + xw + ox * Kx;
    float acc = n > 0 ? src[0] * as_float(w[0]) : 0.0f;
    for (int j = 1; j < n; ++j) acc += src[j] * as_float(w[j]);
    tl[e] = acc;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  int no = (oy1 - oy0) * ow;
  __global float* yc = y + (nc * oh + oy0) * ow;
  for (int e = l; e < no; e += RS_WG) {
    int q = e / ow, ox = e - q * ow, oy = oy0 + q;
    int ymin = tab[yi + 2 * oy], n = tab[yi + 2 * oy + 1];
    __local const float* src = tl + (ymin - ty0) * ow + ox;
    __global const int* w = tab + yw + oy * Ky;
    float acc = n > 0 ? src[0] * as_float(w[0]) : 0.0f;
    for (int j = 1; j < n; ++j) acc += src[j * ow] * as_float(w[j]);
    yc[e] = acc;
  }
}

__kernel void resize_bicubic_aa_h_f32(__global const float* x, __global const int* tab, __global float* t, int W,
                                      int ow, int Kx, int xw, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int ox = g % ow, r = g / ow;
  int xmin = tab[2 * ox], n = tab[2 * ox + 1];
  __global const float* src = x + (size_t)r * W + xmin;
  __global const int* w = tab + xw + ox * Kx;
  float acc = n > 0 ? src[0] * as_float(w[0]) : 0.0f;
  for (int j = 1; j < n; ++j) acc += src[j] * as_float(w[j]);
  t[g] = acc;
}

__kernel void resize_bicubic_aa_v_f32(__global const float* t, __global const int* tab, __global float* y, int H,
                                      int oh, int ow, int Ky, int yi, int yw, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int ox = g % ow, q = g / ow;
  int oy = q % oh, nc = q / oh;
  int ymin = tab[yi + 2 * oy], n = tab[yi + 2 * oy + 1];
  __global const float* src = t + ((size_t)nc * H + ymin) * ow + ox;
  __global const int* w = tab + yw + oy * Ky;
  float acc = n > 0 ? src[0] * as_float(w[0]) : 0.0f;
  for (int j = 1; j < n; ++j) acc += src[(size_t)j * ow] * as_float(w[j]);
  y[g] = acc;
}

__kernel void resize_linear_f32(__global const float* x, __global float* y, int L, int out, float scale, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int o = g % out, r = g / out;
  float src = scale * ((float)o + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  int i0 = min((int)floor(src), L - 1);
  float lambda = fmin(fmax(src - (float)i0, 0.0f), 1.0f);
  int i1 = i0 + (i0 < L - 1 ? 1 : 0);
  __global const float* xr = x + (size_t)r * L;
  y[g] = xr[i0] * (1.0f - lambda) + xr[i1] * lambda;
}

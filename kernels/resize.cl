// Resampling with PyTorch's exact semantics, fp32 arithmetic.
//
//   resize_bicubic_aa_{h,v}_f32: F.interpolate(x, (oh, ow), mode="bicubic", antialias=True,
//     align_corners=False) as ATen's separable CPU path: a horizontal pass x [NC,H,W] -> t [NC,H,ow],
//     then a vertical pass t [NC,H,ow] -> y [NC,oh,ow]. Per axis (in -> out), the host computes for each
//     output index i a tap window (idx[2i] = first input index, idx[2i+1] = tap count <= K) and the
//     normalised Keys (a = -0.5) weights wt[i*K + j] (ATen's _compute_indices_min_size_weights_aa, in
//     fp32 like ATen), so both passes are plain gathers:
//       t[r, ox]       = sum_{j<n(ox)} x[r, xmin(ox)+j]       * wx[ox*K+j]      (r = nc*H + h)
//       y[nc, oy, ox]  = sum_{j<n(oy)} t[nc, ymin(oy)+j, ox]  * wy[oy*K+j]
//     accumulated in order from j = 0, as ATen does. One work-item per output element; the flat
//     index g runs fastest over ox, so neighbouring work-items read neighbouring inputs (the
//     vertical pass reads rows of t coalesced).
//   resize_linear_f32: F.interpolate(x, out, mode="linear", align_corners=False) over the last axis of
//     x [rows, L] -> y [rows, out], scale = L/out (fp32, from the host):
//       src = max(scale*(o+0.5) - 0.5, 0); i0 = min(floor(src), L-1); i1 = i0 + (i0 < L-1);
//       lambda = clamp(src - i0, 0, 1); y = x[i0]*(1-lambda) + x[i1]*lambda   (ATen's fp32 formulas)
//     one work-item per output element, flat index g = r*out + o.
// Multiplies and adds are kept separate (FP_CONTRACT OFF) to follow ATen's scalar code; no tunables
// (1-D NDRanges, work-group size chosen by the host).
#pragma OPENCL FP_CONTRACT OFF

__kernel void resize_bicubic_aa_h_f32(__global const float* x, __global const int* idx, __global const float* wt,
                                      __global float* t, int W, int ow, int K, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int ox = g % ow, r = g / ow;
  int xmin = idx[2 * ox], n = idx[2 * ox + 1];
  __global const float* src = x + (size_t)r * W + xmin;
  __global const float* w = wt + (size_t)ox * K;
  float acc = 0.0f;
  for (int j = 0; j < n; ++j) acc += src[j] * w[j];
  t[g] = acc;
}

__kernel void resize_bicubic_aa_v_f32(__global const float* t, __global const int* idx, __global const float* wt,
                                      __global float* y, int H, int oh, int ow, int K, int total) {
  int g = get_global_id(0);
  if (g >= total) return;
  int ox = g % ow, q = g / ow;
  int oy = q % oh, nc = q / oh;
  int ymin = idx[2 * oy], n = idx[2 * oy + 1];
  __global const float* src = t + ((size_t)nc * H + ymin) * ow + ox;
  __global const float* w = wt + (size_t)oy * K;
  float acc = 0.0f;
  for (int j = 0; j < n; ++j) acc += src[(size_t)j * ow] * w[j];
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

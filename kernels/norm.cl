// Normalisations, fp32 arithmetic.
//   layer_norm_f32:    rows of C: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance)
//                      one work-group (WG) per row; two passes over the row (mean, then variance
//                      of the centred values) for accuracy.
//   layer_norm_2d_f32: x [N,C,H*W], normalised over C for each (n, pixel) (SAM's LayerNorm2d);
//                      one work-item per pixel, looping over C (reads coalesced across pixels).
//   rms_norm_f32:      rows of C: y = x * rsqrt(mean(x^2) + eps) * w  (the weight applied after
//                      the normalisation, as DeepSeek-V2 / Qwen2 do in fp32).
//   add_rms_norm_f32:  the residual add fused in front of rms_norm_f32: x += a (nadd 1) or
//                      x += (a + b) (nadd 2, the order of `(a + b)` then `x + ...` as separate adds
//                      would round), written back to x, and y = rms_norm(x); bit-identical to
//                      add(s) followed by rms_norm_f32. One work-group per row.
// Tunables: WG (work-group size for row kernels, power of two, default 256).
#include "reduce.cl"

__kernel void layer_norm_f32(__global const float* x, __global const float* w, __global const float* b,
                             __global float* y, int C, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global const float* xr = x + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) s += xr[c];
  float mean = wg_reduce_sum(s, scratch) / C;
  float v = 0.0f;
  for (int c = l; c < C; c += WG) {
    float d = xr[c] - mean;
    v += d * d;
  }
  float rstd = rsqrt(wg_reduce_sum(v, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = (xr[c] - mean) * rstd * w[c] + b[c];
}

__kernel void layer_norm_2d_f32(__global const float* x, __global const float* w, __global const float* b,
                                __global float* y, int C, int HW, float eps) {
  int p = get_global_id(0), n = get_global_id(1);
  if (p >= HW) return;
  __global const float* xp = x + (size_t)n * C * HW + p;
  float s = 0.0f;
  for (int c = 0; c < C; ++c) s += xp[(size_t)c * HW];
  float mean = s / C;
  float v = 0.0f;
  for (int c = 0; c < C; ++c) {
    float d = xp[(size_t)c * HW] - mean;
    v += d * d;
  }
  float rstd = rsqrt(v / C + eps);
  __global float* yp = y + (size_t)n * C * HW + p;
  for (int c = 0; c < C; ++c) yp[(size_t)c * HW] = (xp[(size_t)c * HW] - mean) * rstd * w[c] + b[c];
}

__kernel void rms_norm_f32(__global const float* x, __global const float* w, __global float* y, int C, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global const float* xr = x + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) s += xr[c] * xr[c];
  float r = rsqrt(wg_reduce_sum(s, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = xr[c] * r * w[c];
}

__kernel void add_rms_norm_f32(__global float* x, __global const float* a, __global const float* b, int nadd,
                               __global const float* w, __global float* y, int C, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global float* xr = x + row * C;
  __global const float* ar = a + row * C;
  __global const float* br = b + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) {
    float v = xr[c] + (nadd > 1 ? ar[c] + br[c] : ar[c]);
    xr[c] = v;
    s += v * v;
  }
  float r = rsqrt(wg_reduce_sum(s, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = xr[c] * r * w[c];
}

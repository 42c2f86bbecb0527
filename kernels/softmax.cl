// Softmax over the last axis, fp32: y = exp(x - max) / sum(exp(x - max)).
// One work-group (WG) per row; a row of -INFINITY only gives zeros (no NaN).
#include "reduce.cl"

__kernel void softmax_f32(__global const float* x, __global float* y, int N) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global const float* xr = x + row * N;
  float m = -INFINITY;
  for (int i = l; i < N; i += WG) m = fmax(m, xr[i]);
  m = wg_reduce_max(m, scratch);
  float s = 0.0f;
  for (int i = l; i < N; i += WG) s += m == -INFINITY ? 0.0f : exp(xr[i] - m);
  s = wg_reduce_sum(s, scratch);
  float inv = s > 0.0f ? 1.0f / s : 0.0f;
  __global float* yr = y + row * N;
  for (int i = l; i < N; i += WG) yr[i] = m == -INFINITY ? 0.0f : exp(xr[i] - m) * inv;
}

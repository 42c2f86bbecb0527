// Layout changes, fp32. One work-item per element.
//   nchw_to_nhwc_f32: y[n,h,w,c] = x[n,c,h,w]     global (C↑64, H*W, N)
//   nhwc_to_nchw_f32: y[n,c,h,w] = x[n,h,w,c]     global (HW↑64, C, N)

__kernel void nchw_to_nhwc_f32(__global const float* x, __global float* y, int C, int HW) {
  int c = get_global_id(0), p = get_global_id(1), n = get_global_id(2);
  if (c >= C || p >= HW) return;
  y[((size_t)n * HW + p) * C + c] = x[((size_t)n * C + c) * HW + p];
}

__kernel void nhwc_to_nchw_f32(__global const float* x, __global float* y, int C, int HW) {
  int p = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
  if (p >= HW || c >= C) return;
  y[((size_t)n * C + c) * HW + p] = x[((size_t)n * HW + p) * C + c];
}

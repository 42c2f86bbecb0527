// GEMM epilogues and dtype widening.
//   add_bias_f32: y[r*ld + c + off] += bias[c]            global (cols↑64, rows)
//   widen_f16:    dst[i] = (float)src_half[i]              global (n↑256)
//   copy_f32:     dst[i] = src[i]

__kernel void add_bias_f32(__global float* y, __global const float* bias, int rows, int cols, int ld, int off) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  y[off + (size_t)r * ld + c] += bias[c];
}

__kernel void widen_f16(__global const half* src, __global float* dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = vload_half(i, src);
}

__kernel void copy_f32(__global const float* src, __global float* dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = src[i];
}

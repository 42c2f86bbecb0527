// Exact dtype conversions (runtime/ops/convert.h).
//   widen_f16:    dst[i] = (float)src_half[i]              global (n↑256)
//   widen_bf16:   dst[i] = bits(src[i]) << 16              global (n↑256); exact (bf16 is the top
//                                                          half of an fp32)
//   narrow_bf16:  dst[i] = top 16 bits of src[i] rounded   global (n↑256); round to nearest, ties
//                 to even; overflow gives ±inf; NaN stays NaN (quiet bit set, sign kept); -0 and
//                 subnormals handled bitwise (no float arithmetic, so no flush to zero)
//   copy_f32:     dst[i] = src[i]
// widen_bf16 and narrow_bf16 move fp32 values as uint bit patterns so that no device flushes a
// subnormal on the way.

__kernel void widen_f16(__global const half* src, __global float* dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = vload_half(i, src);
}

// src: bf16 bits; dst: fp32 bits.
__kernel void widen_bf16(__global const ushort* src, __global uint* dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = (uint)src[i] << 16;
}

// src: fp32 bits; dst: bf16 bits.
__kernel void narrow_bf16(__global const uint* src, __global ushort* dst, int n) {
  int i = get_global_id(0);
  if (i >= n) return;
  uint b = src[i];
  if ((b & 0x7fffffffu) > 0x7f800000u) {
    dst[i] = (ushort)((b >> 16) | 0x0040u);  // NaN: keep it NaN even if only low payload bits were set
  } else {
    dst[i] = (ushort)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);  // round to nearest even; inf stays inf
  }
}

__kernel void copy_f32(__global const float* src, __global float* dst, int n) {
  int i = get_global_id(0);
  if (i < n) dst[i] = src[i];
}

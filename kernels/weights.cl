// Weight storage formats, widened to fp32 as they are loaded (included by linear.cl and moe.cl;
// the host picks one with runtime/ops/weight_format.h). LOADW(p, i) is element i of the weight
// tensor p counted flat in row-major order; wtype is the pointer's element type.
//   (none)       f32
//   WEIGHT_F16   IEEE half, vload_half (core OpenCL: no cl_khr_fp16 needed)
//   WEIGHT_BF16  raw bfloat16 bits as ushort, widened exactly with as_float(bits << 16)
//   WEIGHT_Q8    group-wise affine int8 (runtime/quant.h): 36-byte blocks of 32 elements, the 32
//                codes then an fp16 scale s and offset b; w = s * q + b
//   WEIGHT_Q4    the same with 4-bit codes: 20-byte blocks, 16 code bytes (element 2i in the low
//                nibble of byte i), then s and b
// The quantised forms are read block by block in place: there is never a widened copy.
// WIDE8 (defined for f32, f16 and bf16): LOADW8(p, i, a, b) loads elements i..i+7 (i a multiple
// of 8, the buffer 16-byte aligned) into float4 a (i..i+3) and b (i+4..i+7) with one 16- or 32-byte
// vector load, for kernels whose rows are whole groups of 8 (K % 8 == 0).
#if defined(WEIGHT_F16) + defined(WEIGHT_BF16) + defined(WEIGHT_Q8) + defined(WEIGHT_Q4) > 1
#error "WEIGHT_F16, WEIGHT_BF16, WEIGHT_Q8 and WEIGHT_Q4 are exclusive"
#endif
#if defined(WEIGHT_F16)
typedef half wtype;
#define LOADW(p, i) vload_half((i), (p))
#define WIDE8
#define LOADW8(p, i, a, b)                    \
  {                                           \
    float8 w8_ = vloada_half8((i) >> 3, (p)); \
    a = w8_.lo;                               \
    b = w8_.hi;                               \
  }
#elif defined(WEIGHT_BF16)
typedef ushort wtype;
#define LOADW(p, i) as_float((uint)(p)[(i)] << 16)
#define WIDE8
#define LOADW8(p, i, a, b)                                                     \
  {                                                                            \
    uint8 w8_ = convert_uint8(((__global const ushort8*)(p))[(i) >> 3]) << 16; \
    a = as_float4(w8_.lo);                                                     \
    b = as_float4(w8_.hi);                                                     \
  }
#elif defined(WEIGHT_Q8) || defined(WEIGHT_Q4)
typedef uchar wtype;
#ifdef WEIGHT_Q8
#define QBLOCK 36
#define QCODES 32
#define QCODE(b, j) ((float)(b)[(j)])
#else
#define QBLOCK 20
#define QCODES 16
#define QCODE(b, j) ((float)(((b)[(j) >> 1] >> (4 * ((j) & 1))) & 0xf))
#endif
inline float loadw_q(__global const uchar* p, size_t i) {
  __global const uchar* b = p + (i >> 5) * QBLOCK;
  __global const half* sb = (__global const half*)(b + QCODES);
  int j = (int)(i & 31);
  return vload_half(0, sb) * QCODE(b, j) + vload_half(1, sb);
}
#define LOADW(p, i) loadw_q((p), (size_t)(i))
// Block blk (counted flat over the tensor) widened at once, for kernels whose rows are whole blocks
// (K % 32 == 0): q[j] = code j, *s the scale, *b the offset, so that a dot product with x is
// s * sum_j q[j] x[j] + b * sum_j x[j]: one 16- or 32-byte load instead of 32 scalar decodes.
inline void q_block(__global const uchar* p, size_t blk, float* q, float* s, float* b) {
  __global const uchar* bp = p + blk * QBLOCK;
  uchar c[32];
#ifdef WEIGHT_Q8
  vstore16(vload16(0, bp), 0, c);
  vstore16(vload16(1, bp), 1, c);
  for (int j = 0; j < 32; ++j) q[j] = (float)c[j];
#else
  vstore16(vload16(0, bp), 0, c);
  for (int j = 0; j < 16; ++j) {
    q[2 * j] = (float)(c[j] & 0xf);
    q[2 * j + 1] = (float)(c[j] >> 4);
  }
#endif
  __global const half* sb = (__global const half*)(bp + QCODES);
  *s = vload_half(0, sb);
  *b = vload_half(1, sb);
}
#else
typedef float wtype;
#define LOADW(p, i) ((p)[(i)])
#define WIDE8
#define LOADW8(p, i, a, b)                             \
  {                                                    \
    a = ((__global const float4*)(p))[(i) >> 2];       \
    b = ((__global const float4*)(p))[((i) >> 2) + 1]; \
  }
#endif

// The definitions shared by sdpa.cl (flash attention) and sdpa_decode.cl (decode attention and
// the combine passes): the tunables and their checks, the bias flags, the bias of one logit and
// the row loads (kvtype: kv_storage.cl). See sdpa.cl for the kernels and the tunables.

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef FL_TQ
#define FL_TQ 16
#endif
#ifndef FL_TK
#define FL_TK 8
#endif
#ifndef FL_RQ
#define FL_RQ 2
#endif
#ifndef FL_RK
#define FL_RK 4
#endif
#ifndef FL_DC4  // ceil(HEAD_DIM / (4*FL_TK)) as a literal
#if HEAD_DIM <= 1 * 4 * FL_TK
#define FL_DC4 1
#elif HEAD_DIM <= 2 * 4 * FL_TK
#define FL_DC4 2
#elif HEAD_DIM <= 3 * 4 * FL_TK
#define FL_DC4 3
#elif HEAD_DIM <= 4 * 4 * FL_TK
#define FL_DC4 4
#elif HEAD_DIM <= 5 * 4 * FL_TK
#define FL_DC4 5
#elif HEAD_DIM <= 6 * 4 * FL_TK
#define FL_DC4 6
#elif HEAD_DIM <= 7 * 4 * FL_TK
#define FL_DC4 7
#elif HEAD_DIM <= 8 * 4 * FL_TK
#define FL_DC4 8
#elif HEAD_DIM <= 9 * 4 * FL_TK
#define FL_DC4 9
#elif HEAD_DIM <= 10 * 4 * FL_TK
#define FL_DC4 10
#elif HEAD_DIM <= 11 * 4 * FL_TK
#define FL_DC4 11
#elif HEAD_DIM <= 12 * 4 * FL_TK
#define FL_DC4 12
#elif HEAD_DIM <= 13 * 4 * FL_TK
#define FL_DC4 13
#elif HEAD_DIM <= 14 * 4 * FL_TK
#define FL_DC4 14
#elif HEAD_DIM <= 15 * 4 * FL_TK
#define FL_DC4 15
#elif HEAD_DIM <= 16 * 4 * FL_TK
#define FL_DC4 16
#endif
#endif
#ifndef DEC_NT
#define DEC_NT 128
#endif
#ifndef DEC_BK
#define DEC_BK 32
#endif

#if 4 * FL_DC4 * FL_TK < HEAD_DIM || 4 * (FL_DC4 - 1) * FL_TK >= HEAD_DIM
#error "FL_DC4 must be ceil(HEAD_DIM / (4*FL_TK))"
#endif
#if (FL_RK * FL_TK) % 4 != 0 || FL_RQ > 16 || FL_RK > 16 || FL_DC4 > 16
#error "FL_RK*FL_TK must be a multiple of 4; FL_RQ, FL_RK, FL_DC4 at most 16"
#endif
#if DEC_NT % DEC_BK != 0 || DEC_BK % 4 != 0 || DEC_NT < HEAD_DIM
#error "DEC_NT must be a multiple of DEC_BK and >= HEAD_DIM, DEC_BK a multiple of 4"
#endif

#define SDPA_DENSE 1
#define SDPA_RELPOS 2
#define SDPA_CAUSAL 4


#define DQ (((HEAD_DIM) + 3) & ~3)  // HEAD_DIM rounded up to 4

// The bias of logit (b,h,i,j) (i < Nq, j < Nk).
inline float sdpa_bias(int flags, __global const float* bias, long b_off, long b_sb, long b_sh, long b_sq,
                       __global const float* relh, __global const float* relw, int kh, int kw, int b, int h,
                       int H, int Nq, int i, int j) {
  float x = 0.0f;
  if (flags & SDPA_DENSE) x += bias[b_off + b * b_sb + h * b_sh + i * b_sq + j];
  if (flags & SDPA_RELPOS) {
    long row = ((long)b * H + h) * Nq + i;
    int jy = j / kw;
    x += relh[row * kh + jy] + relw[row * kw + (j - jy * kw)];
  }
  return x;
}

// Elements [d, d+4) of a row, zero past HEAD_DIM.
inline float4 load_row4(__global const float* p, int d) {
  if (d + 4 <= HEAD_DIM) return vload4(0, p + d);
  float4 x = (float4)(0.0f);
  if (d < HEAD_DIM) x.x = p[d];
  if (d + 1 < HEAD_DIM) x.y = p[d + 1];
  if (d + 2 < HEAD_DIM) x.z = p[d + 2];
  return x;
}

#include "kv_storage.cl"

// load_row4 for a K or V row in its storage type.
inline float4 load_kv4(__global const kvtype* p, int d) {
  if (d + 4 <= HEAD_DIM) return LOADKV4(p + d);
  float4 x = (float4)(0.0f);
  if (d < HEAD_DIM) x.x = LOADKV(p, d);
  if (d + 1 < HEAD_DIM) x.y = LOADKV(p, d + 1);
  if (d + 2 < HEAD_DIM) x.z = LOADKV(p, d + 2);
  return x;
}

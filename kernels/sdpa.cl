// Scaled dot-product attention, fp32 arithmetic.
//
//   out[b,h,i,:] = sum_j softmax_j(scale * q[b,h,i,:].k[b,hk,j,:] + bias[b,h,i,j]) * v[b,hk,j,:]
//
// with hk = h / group (group = H / Hkv: grouped KV heads) and bias the sum of
//   - a dense additive bias, element (b,h,i,j) at b_off + b*b_sb + h*b_sh + i*b_sq + j
//     (strides 0 for broadcast dims)                                       (flags & SDPA_DENSE)
//   - SAM's decomposed relative position: relh[b,h,i,j / kw] + relw[b,h,i,j % kw], relh
//     [B,H,Nq,kh] and relw [B,H,Nq,kw] dense, Nk = kh*kw, added on the fly  (flags & SDPA_RELPOS)
//   - a causal mask: key j is visible to query i when j <= i + Nk - Nq        (flags & SDPA_CAUSAL)
//     or j < prefix (a prefix every query sees: DeepSeek-OCR-2's encoder, image tokens then
//     learned queries; prefix 0 = plain causal), a rule: no [Nq, Nk] mask in memory
// Masked logits are -INFINITY. A row with no visible key gets zeros (never NaN).
//
// q, k, v and out are strided views: element (b,h,n,d) of q at q_off + b*q_sb + h*q_sh + n*q_sn + d
// (d contiguous), and likewise for k, v, out. HEAD_DIM (= D) is a compile-time constant.
// Keys may be split over `nsplit` work-groups of `chunk` keys each (a multiple of the key tile):
// with nsplit == 1 the kernels write out directly, otherwise each split writes its row results
// (m, l, acc[D]) to part[(row*nsplit + split)*(D+2)], row = (b*H + h)*Nq + i, and
// sdpa_combine_f32 merges them.
//
// sdpa_flash_f32: one work-group of FL_TQ*FL_TK work-items per (query tile of FL_BQ = FL_RQ*FL_TQ
//   rows, key split, b*H + h). Grid (FL_TQ*FL_TK, ceil(Nq/FL_BQ)*nsplit, B*H). The scaled Q tile
//   stays in local memory; the loop walks key tiles of FL_BK = FL_RK*FL_TK keys with an online
//   softmax; K and V tiles share one local buffer. Work-item (tq, tk) owns query rows
//   tq + r*FL_TQ (r < FL_RQ), the logits of keys tk + c*FL_TK (c < FL_RK) and the output dims
//   4*(tk + c*FL_TK) + 0..3 (c < FL_DC4). Local bytes: 4*(FL_BQ*LD + FL_BK*LD + FL_BQ*(FL_BK+4)),
//   LD = 4*FL_DC4*FL_TK + 4 (defaults: D=64 22 KiB, D=128 27.8 KiB). Causal tiles past the
//   diagonal are skipped.
//
// sdpa_decode_f32: few queries against many keys (Nq = 1, KV-cache decode). One work-group of
//   DEC_NT work-items per (query row, key split). Grid (DEC_NT, nsplit, B*H*Nq). A split walks
//   tiles of DEC_BK keys: K tile in local memory, DEC_NT/DEC_BK lanes per key for the dot
//   products, then V read straight from global memory, work-item d owning output dim d
//   (so D <= DEC_NT). Local bytes: 4*(DQ + DEC_BK*(DQ+4) + DEC_NT + 2*DEC_BK), DQ = D rounded up
//   to 4 (D=128: 17.6 KiB).
// sdpa_decode_batch_f32: the same per row for a batch of sequences, one query each, with their own
//   rows of one KV cache, key counts and splits. The decode kernels and the combine passes are in
//   sdpa_decode.cl, a program of their own; sdpa_common.cl holds what both files share.
//
// Register tiles are written out with the REPA/REPB macros (constant indices, no loops): Mesa's
// llvmpipe neither unrolls loops that index private arrays nor lets a work-item run more than
// 65535 loop iterations in total (gallivm's loop limiter; later iterations are silently
// skipped), so the loops left here are few per key and the host caps the keys per work-group there.
//
// K and V storage (both alike): fp32, or 16-bit widened on load (a decoder's KV cache: KV_F16 or
// KV_BF16, kv_storage.cl). q, out, the bias and every computation stay fp32.
//
// Tunables (literal integers): HEAD_DIM; FL_TQ, FL_TK (work-group FL_TQ x FL_TK), FL_RQ, FL_RK
// (rows and keys per work-item, <= 16, FL_RK*FL_TK a multiple of 4), FL_DC4 (float4 output
// chunks per work-item: 4*FL_DC4*FL_TK >= HEAD_DIM > 4*(FL_DC4-1)*FL_TK); DEC_NT >= HEAD_DIM,
// DEC_BK (DEC_NT % DEC_BK == 0, DEC_BK % 4 == 0).

#include "sdpa_common.cl"

// REPA(n, M, x) expands to M(0, x) M(1, x) ... M(n-1, x); REPB likewise (a second family, so
// that one may be used inside the other).
#define REPA_1(M, x) M(0, x)
#define REPA_2(M, x) REPA_1(M, x) M(1, x)
#define REPA_3(M, x) REPA_2(M, x) M(2, x)
#define REPA_4(M, x) REPA_3(M, x) M(3, x)
#define REPA_5(M, x) REPA_4(M, x) M(4, x)
#define REPA_6(M, x) REPA_5(M, x) M(5, x)
#define REPA_7(M, x) REPA_6(M, x) M(6, x)
#define REPA_8(M, x) REPA_7(M, x) M(7, x)
#define REPA_9(M, x) REPA_8(M, x) M(8, x)
#define REPA_10(M, x) REPA_9(M, x) M(9, x)
#define REPA_11(M, x) REPA_10(M, x) M(10, x)
#define REPA_12(M, x) REPA_11(M, x) M(11, x)
#define REPA_13(M, x) REPA_12(M, x) M(12, x)
#define REPA_14(M, x) REPA_13(M, x) M(13, x)
#define REPA_15(M, x) REPA_14(M, x) M(14, x)
#define REPA_16(M, x) REPA_15(M, x) M(15, x)
#define REPA(n, M, x) REPA_X(n, M, x)
#define REPA_X(n, M, x) REPA_##n(M, x)
#define REPB_1(M, x) M(0, x)
#define REPB_2(M, x) REPB_1(M, x) M(1, x)
#define REPB_3(M, x) REPB_2(M, x) M(2, x)
#define REPB_4(M, x) REPB_3(M, x) M(3, x)
#define REPB_5(M, x) REPB_4(M, x) M(4, x)
#define REPB_6(M, x) REPB_5(M, x) M(5, x)
#define REPB_7(M, x) REPB_6(M, x) M(6, x)
#define REPB_8(M, x) REPB_7(M, x) M(7, x)
#define REPB_9(M, x) REPB_8(M, x) M(8, x)
#define REPB_10(M, x) REPB_9(M, x) M(9, x)
#define REPB_11(M, x) REPB_10(M, x) M(10, x)
#define REPB_12(M, x) REPB_11(M, x) M(11, x)
#define REPB_13(M, x) REPB_12(M, x) M(12, x)
#define REPB_14(M, x) REPB_13(M, x) M(13, x)
#define REPB_15(M, x) REPB_14(M, x) M(14, x)
#define REPB_16(M, x) REPB_15(M, x) M(15, x)
#define REPB(n, M, x) REPB_X(n, M, x)
#define REPB_X(n, M, x) REPB_##n(M, x)


// Writes elements [d, d+4) of a row, dropping those past HEAD_DIM.
inline void store_row4(float4 x, __global float* p, int d) {
  if (d + 4 <= HEAD_DIM) {
    vstore4(x, 0, p + d);
    return;
  }
  if (d < HEAD_DIM) p[d] = x.x;
  if (d + 1 < HEAD_DIM) p[d + 1] = x.y;
  if (d + 2 < HEAD_DIM) p[d + 2] = x.z;
}

#define FL_NT (FL_TQ * FL_TK)
#define FL_BQ (FL_RQ * FL_TQ)
#define FL_BK (FL_RK * FL_TK)
#define FL_DW (4 * FL_DC4 * FL_TK)  // D padded to the output chunks (zeros past D)
#define FL_LD (FL_DW + 4)           // row stride of the Q and K/V tiles (float4-aligned)
#define FL_SLD (FL_BK + 4)          // row stride of the logits tile

// tile[r][0..FL_DW) = src[row0 + r][...] * scale for r < rows (zero for rows >= nvalid and past D).
inline void flash_load_tile(__local float* tile, int rows, __global const float* src, long sn, int row0, int nvalid,
                            float scale, int lid) {
  for (int e = lid; e < rows * (FL_DW / 4); e += FL_NT) {
    int r = e / (FL_DW / 4), d = (e - r * (FL_DW / 4)) * 4;
    float4 x = r < nvalid ? load_row4(src + (row0 + r) * sn, d) * scale : (float4)(0.0f);
    vstore4(x, 0, tile + r * FL_LD + d);
  }
}

// flash_load_tile for a K or V tile in its storage type (scale 1).
inline void flash_load_kv_tile(__local float* tile, int rows, __global const kvtype* src, long sn, int row0,
                               int nvalid, int lid) {
  for (int e = lid; e < rows * (FL_DW / 4); e += FL_NT) {
    int r = e / (FL_DW / 4), d = (e - r * (FL_DW / 4)) * 4;
    float4 x = r < nvalid ? load_kv4(src + (row0 + r) * sn, d) : (float4)(0.0f);
    vstore4(x, 0, tile + r * FL_LD + d);
  }
}

// The flash kernel's unrolled steps (REPA over the FL_RQ query rows, REPB over the FL_RK key or
// FL_DC4 value columns of a work-item), named here so that the kernel reads as its loop.
#define FL_INIT_ACC(c, r) acc[r][c] = (float4)(0.0f);
#define FL_INIT(r, _)  \
  m[r] = -INFINITY;    \
  l[r] = 0.0f;         \
  REPB(FL_DC4, FL_INIT_ACC, r)
#define FL_S0(c, r) s[r][c] = 0.0f;
#define FL_S0_ROW(r, _) REPB(FL_RK, FL_S0, r)
#define FL_LOAD_Q(r, _) qv[r] = vload4(0, Qs + (tq + r * FL_TQ) * FL_LD + d);
#define FL_LOAD_K(c, _) kv[c] = vload4(0, KVs + (tk + c * FL_TK) * FL_LD + d);
#define FL_DOT(c, r) s[r][c] += dot(qv[r], kv[c]);
#define FL_DOT_ROW(r, _) REPB(FL_RK, FL_DOT, r)
#define FL_LOGIT(c, r)                                                                                         \
  {                                                                                                            \
    const int i = q0 + tq + r * FL_TQ, j = k0 + tk + c * FL_TK;                                               \
    float x = -INFINITY;                                                                                       \
    if (i < Nq && j < k_stop && (!causal || j <= i + shift || j < prefix))                                     \
      x = s[r][c] + sdpa_bias(flags, bias, b_off, b_sb, b_sh, b_sq, relh, relw, kh, kw, b, h, H, Nq, i, j); \
    s[r][c] = x;                                                                                               \
    Ss[(tq + r * FL_TQ) * FL_SLD + tk + c * FL_TK] = x;                                                        \
  }
#define FL_LOGIT_ROW(r, _) REPB(FL_RK, FL_LOGIT, r)
#define FL_MAX(r, _)                                                                 \
  {                                                                                  \
    __local const float* sr = Ss + (tq + r * FL_TQ) * FL_SLD;                        \
    float mt = m[r];                                                                 \
    for (int c = 0; c < FL_BK; c += 4) {                                             \
      float4 x = vload4(0, sr + c);                                                  \
      mt = fmax(mt, fmax(fmax(x.x, x.y), fmax(x.z, x.w)));                           \
    }                                                                                \
    mu[r] = mt == -INFINITY ? 0.0f : mt; /* nothing visible yet: exp(-inf) = 0 */ \
    alpha[r] = exp(m[r] - mu[r]);                                                    \
    m[r] = mt;                                                                       \
  }
#define FL_P(c, r) Ss[(tq + r * FL_TQ) * FL_SLD + tk + c * FL_TK] = exp(s[r][c] - mu[r]);
#define FL_P_ROW(r, _) REPB(FL_RK, FL_P, r)
#define FL_RESCALE_C(c, r) acc[r][c] *= alpha[r];
#define FL_RESCALE(r, _) \
  l[r] *= alpha[r];      \
  REPB(FL_DC4, FL_RESCALE_C, r)
#define FL_LOAD_V(c, _) vv[c] = vload4(0, KVs + j * FL_LD + (tk + c * FL_TK) * 4);
#define FL_PV_C(c, r) acc[r][c] = fma((float4)(p), vv[c], acc[r][c]);
#define FL_PV(r, _)                               \
  {                                               \
    const float p = Ss[(tq + r * FL_TQ) * FL_SLD + j]; \
    l[r] += p;                                    \
    REPB(FL_DC4, FL_PV_C, r)                      \
  }
#define FL_OUT_C(c, r) store_row4(acc[r][c] * inv, orow, (tk + c * FL_TK) * 4);
#define FL_PART_C(c, r) store_row4(acc[r][c], pr + 2, (tk + c * FL_TK) * 4);
#define FL_OUT(r, _)                                                                              \
  {                                                                                               \
    const int i = q0 + tq + r * FL_TQ;                                                            \
    if (i < Nq) {                                                                                 \
      if (nsplit == 1) {                                                                          \
        __global float* orow = o + o_off + b * o_sb + h * o_sh + i * o_sn;                        \
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;                                       \
        REPB(FL_DC4, FL_OUT_C, r)                                                                 \
      } else {                                                                                    \
        __global float* pr = part + (((long)bh * Nq + i) * nsplit + split) * (HEAD_DIM + 2);      \
        if (tk == 0) {                                                                            \
          pr[0] = m[r];                                                                           \
          pr[1] = l[r];                                                                           \
        }                                                                                         \
        REPB(FL_DC4, FL_PART_C, r)                                                                \
      }                                                                                           \
    }                                                                                             \
  }

__kernel __attribute__((reqd_work_group_size(FL_NT, 1, 1))) void sdpa_flash_f32(
    __global const float* q, long q_off, long q_sb, long q_sh, long q_sn,  //
    __global const kvtype* k, long k_off, long k_sb, long k_sh, long k_sn,  //
    __global const kvtype* v, long v_off, long v_sb, long v_sh, long v_sn,  //
    __global float* o, long o_off, long o_sb, long o_sh, long o_sn,        //
    __global const float* bias, long b_off, long b_sb, long b_sh, long b_sq,
    __global const float* relh, __global const float* relw, int kh, int kw,  //
    int H, int group, int Nq, int Nk, float scale, int flags, int prefix,  //
    int nsplit, int chunk, __global float* part) {
  __local float Qs[FL_BQ * FL_LD];
  __local float KVs[FL_BK * FL_LD];
  __local float Ss[FL_BQ * FL_SLD];

  const int lid = get_local_id(0);
  const int tq = lid / FL_TK, tk = lid % FL_TK;
  const int qt = get_group_id(1) / nsplit, split = get_group_id(1) - qt * nsplit;
  const int q0 = qt * FL_BQ;
  const int bh = get_group_id(2);
  const int b = bh / H, h = bh - b * H, hk = h / group;
  const int shift = Nk - Nq;
  const int causal = flags & SDPA_CAUSAL;

  __global const kvtype* kb = k + k_off + b * k_sb + hk * k_sh;
  __global const kvtype* vb = v + v_off + b * v_sb + hk * v_sh;
  flash_load_tile(Qs, FL_BQ, q + q_off + b * q_sb + h * q_sh, q_sn, q0, Nq - q0, scale, lid);

  float m[FL_RQ], l[FL_RQ], mu[FL_RQ], alpha[FL_RQ], s[FL_RQ][FL_RK];
  float4 acc[FL_RQ][FL_DC4];
  REPA(FL_RQ, FL_INIT, _)

  const int k_begin = split * chunk;
  const int k_stop = min(Nk, k_begin + chunk);  // this split's keys
  int k_end = k_stop;
  if (causal) k_end = min(k_end, max(q0 + FL_BQ + shift, prefix));  // no visible key past this one

  for (int k0 = k_begin; k0 < k_end; k0 += FL_BK) {
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous tile's V and P are no longer read
    flash_load_kv_tile(KVs, FL_BK, kb, k_sn, k0, k_stop - k0, lid);
    barrier(CLK_LOCAL_MEM_FENCE);

    // s = (scale q) . k over the dims rounded up to 4 (zeros past D).
    REPA(FL_RQ, FL_S0_ROW, _)
    for (int d = 0; d < DQ; d += 4) {
      float4 qv[FL_RQ], kv[FL_RK];
      REPA(FL_RQ, FL_LOAD_Q, _)
      REPB(FL_RK, FL_LOAD_K, _)
      REPA(FL_RQ, FL_DOT_ROW, _)
    }
    // bias and masks; logits to local memory
    REPA(FL_RQ, FL_LOGIT_ROW, _)
    barrier(CLK_LOCAL_MEM_FENCE);  // logits visible; K no longer read

    flash_load_kv_tile(KVs, FL_BK, vb, v_sn, k0, k_stop - k0, lid);
    // new row maxima over the tile (every work-item of a row computes the same values)
    REPA(FL_RQ, FL_MAX, _)
    barrier(CLK_LOCAL_MEM_FENCE);  // logits read by every work-item of the row; V tile loaded

    REPA(FL_RQ, FL_P_ROW, _)
    barrier(CLK_LOCAL_MEM_FENCE);

    REPA(FL_RQ, FL_RESCALE, _)
    for (int j = 0; j < FL_BK; ++j) {
      float4 vv[FL_DC4];
      REPB(FL_DC4, FL_LOAD_V, _)
      REPA(FL_RQ, FL_PV, _)
    }
  }

  // out = acc / l, or the split's partial (m, l, acc)
  REPA(FL_RQ, FL_OUT, _)
}

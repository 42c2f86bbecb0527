// SAM's decomposed relative-position terms, fp32 arithmetic, from the UNSCALED queries:
//
//   rel_h[b,h,n,ky] = sum_d q[b,h,n,d] * tab_h[y - ky + kh - 1, d]      n = y*kw + x
//   rel_w[b,h,n,kx] = sum_d q[b,h,n,d] * tab_w[x - kx + kw - 1, d]
//
// q is a strided view: element (b,h,n,d) at q_off + b*q_sb + h*q_sh + n*q_sn + d (q grid kh x kw,
// the same as the key grid). tab_h [2kh-1, D] and tab_w [2kw-1, D] dense; rel_h [B,H,N,kh] and
// rel_w [B,H,N,kw] dense. The sdpa kernel adds rel_h[.., j / kw] + rel_w[.., j % kw] to logit (i, j).
//
// Index mapping: work-item (t, n) computes output column t of token n: t < kh goes to rel_h
// (ky = t), kh <= t < kh+kw to rel_w (kx = t - kh). Work-group (RP_WK, RP_WN) shares the RP_WN
// query rows through local memory. Grid (round_up(kh+kw, RP_WK), round_up(N, RP_WN), B*H).
// Local bytes: 4 * RP_WN * RP_DMAX (4 KiB with the defaults). Requires D <= RP_DMAX.
//
// Tunables: RP_WK, RP_WN (work-group shape), RP_DMAX.

#ifndef RP_WK
#define RP_WK 32
#endif
#ifndef RP_WN
#define RP_WN 8
#endif
#ifndef RP_DMAX
#define RP_DMAX 128
#endif

__kernel __attribute__((reqd_work_group_size(RP_WK, RP_WN, 1))) void rel_pos_terms_f32(
    __global const float* q, long q_off, long q_sb, long q_sh, long q_sn,  //
    __global const float* tab_h, __global const float* tab_w,              //
    __global float* rel_h, __global float* rel_w,                           //
    int H, int kh, int kw, int D) {
  __local float qs[RP_WN * RP_DMAX];
  const int lt = get_local_id(0), ln = get_local_id(1);
  const int n0 = get_group_id(1) * RP_WN;
  const int bh = get_group_id(2);
  const int b = bh / H, h = bh - b * H;
  const int N = kh * kw;

  __global const float* qb = q + q_off + b * q_sb + h * q_sh;
  for (int e = ln * RP_WK + lt; e < RP_WN * D; e += RP_WK * RP_WN) {
    int r = e / D, d = e - r * D;
    qs[r * RP_DMAX + d] = n0 + r < N ? qb[(n0 + r) * q_sn + d] : 0.0f;
  }
  barrier(CLK_LOCAL_MEM_FENCE);

  const int t = get_global_id(0), n = n0 + ln;
  if (n >= N || t >= kh + kw) return;
  const int y = n / kw, x = n - y * kw;
  __global const float* tab;
  __global float* dst;
  if (t < kh) {
    tab = tab_h + (y - t + kh - 1) * D;
    dst = rel_h + ((long)bh * N + n) * kh + t;
  } else {
    tab = tab_w + (x - (t - kh) + kw - 1) * D;
    dst = rel_w + ((long)bh * N + n) * kw + (t - kh);
  }
  __local const float* qr = qs + ln * RP_DMAX;
  float s = 0.0f;
  for (int d = 0; d < D; ++d) s = fma(qr[d], tab[d], s);
  *dst = s;
}

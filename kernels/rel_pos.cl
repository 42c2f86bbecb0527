// SAM's decomposed relative-position terms, fp32 arithmetic, from the UNSCALED queries:
//
//   rel_h[b,h,n,ky] = sum_d q[b,h,n,d] * tab_h[y - ky + kh - 1, d]      n = y*kw + x
//   rel_w[b,h,n,kx] = sum_d q[b,h,n,d] * tab_w[x - kx + kw - 1, d]
//
// q is a strided view: element (b,h,n,d) at q_off + b*q_sb + h*q_sh + n*q_sn + d (q grid kh x kw,
// the same as the key grid). tab_h [2kh-1, D] and tab_w [2kw-1, D] dense; rel_h [B,H,N,kh] and
// rel_w [B,H,N,kw] dense. The sdpa kernel adds rel_h[.., j / kw] + rel_w[.., j % kw] to logit (i, j).
//
// Both terms are one problem in two "modes": a group g, a position p in the group and a key k,
//   out[g,p,k] = sum_d q[n(g,p), d] * tab[g - k + K - 1, d]
// rel_h: g = y, p = x, k = ky, K = kh, G = kh groups of P = kw queries, n = g*kw + p, tab = tab_h
// rel_w: g = x, p = y, k = kx, K = kw, G = kw groups of P = kh queries, n = p*kw + g, tab = tab_w
// For one group the table rows g-k+K-1 (k < K) are a contiguous reversed slice, so each group is
// a small GEMM [P x D] x [D x K]; a work-group takes RP_GB consecutive groups at once, whose
// slices overlap, and reads RP_GB + RP_BK - 1 table rows.
//
// Index mapping: one work-group of RP_NT = RP_GB*RP_TP*RP_TK work-items computes a tile of
// RP_GB groups x RP_BP = RP_TP*RP_TM positions x RP_BK = RP_TK*RP_TN keys of one mode and one
// (b,h). Work-item (tg, tp, tk) (tk fastest) owns group g0+tg, positions p0 + tp + i*RP_TP
// (i < RP_TM) and keys k0 + tk + j*RP_TK (j < RP_TN): RP_TM*RP_TN fp32 accumulators in
// registers. D is walked in chunks of RP_DC: the chunk of the tile's RP_GB*RP_BP query rows and
// RP_GB+RP_BK-1 table rows goes to local memory (4 consecutive floats per work-item and step,
// consecutive work-items along d: coalesced; zeros outside the grid, the table and D), then each
// work-item does RP_DC steps of RP_TM + RP_TN local loads and RP_TM*RP_TN fma, d = 0, 1, ...
// (the same sums, in the same order, as a plain loop over d).
// Grid (RP_NT * (tiles_h + tiles_w), B*H), work-group (RP_NT, 1), rel_h tiles first; a mode has
// ceil(G/RP_GB) * ceil(P/RP_BP) * ceil(K/RP_BK) tiles, keys fastest.
// Local bytes: 4 * (RP_GB*RP_BP + RP_GB + RP_BK - 1) * (RP_DC + 1) (rows padded to an odd stride:
// the rows read by neighbouring work-items fall in different banks); 24.9 KiB with the defaults.
// Per work-item loops: ceil(D/RP_DC) chunks x (RP_DC + the two load loops, each
// ceil(rows*RP_DC/4 / RP_NT)): about 80 for D = 64, far below llvmpipe's 65535.
// Register tiles are written out with RP_REPA/RP_REPB (constant indices): llvmpipe does not
// unroll loops that index private arrays. (float4 local reads were ~10% faster on an H200 but
// took 5-10x longer to compile on llvmpipe: up to 20 s for one tile shape.)
//
// Tunables (literal integers): RP_TP, RP_TK (work-items along positions and keys), RP_GB
// (groups per work-group), RP_TM, RP_TN (register tile, 1..8), RP_DC (D chunk, a multiple of 4);
// RP_NT <= 256. The host picks them from max(kh, kw) (defaults: its 64x64 choice).

#ifndef RP_TP
#define RP_TP 8
#endif
#ifndef RP_TK
#define RP_TK 16
#endif
#ifndef RP_GB
#define RP_GB 2
#endif
#ifndef RP_TM
#define RP_TM 8
#endif
#ifndef RP_TN
#define RP_TN 4
#endif
#ifndef RP_DC
#define RP_DC 32
#endif

#define RP_NT (RP_GB * RP_TP * RP_TK)
#define RP_BP (RP_TP * RP_TM)      // positions per tile
#define RP_BK (RP_TK * RP_TN)      // keys per tile
#define RP_QR (RP_GB * RP_BP)      // query rows per tile
#define RP_TR (RP_GB + RP_BK - 1)  // table rows per tile
#define RP_LD (RP_DC + 1)          // local row stride (odd: rows in different banks)

#if RP_NT > 256 || RP_TM < 1 || RP_TM > 8 || RP_TN < 1 || RP_TN > 8 || RP_DC < 4 || RP_DC % 4 != 0
#error "rel_pos.cl: RP_GB*RP_TP*RP_TK must be <= 256, RP_TM and RP_TN in 1..8, RP_DC a multiple of 4"
#endif

// RP_REPA(n, M, x) expands to M(0, x) M(1, x) ... M(n-1, x); RP_REPB likewise (a second family, so
// that one may be used inside the other).
#define RPA_1(M, x) M(0, x)
#define RPA_2(M, x) RPA_1(M, x) M(1, x)
#define RPA_3(M, x) RPA_2(M, x) M(2, x)
#define RPA_4(M, x) RPA_3(M, x) M(3, x)
#define RPA_5(M, x) RPA_4(M, x) M(4, x)
#define RPA_6(M, x) RPA_5(M, x) M(5, x)
#define RPA_7(M, x) RPA_6(M, x) M(6, x)
#define RPA_8(M, x) RPA_7(M, x) M(7, x)
#define RP_REPA(n, M, x) RP_REPA_X(n, M, x)
#define RP_REPA_X(n, M, x) RPA_##n(M, x)
#define RPB_1(M, x) M(0, x)
#define RPB_2(M, x) RPB_1(M, x) M(1, x)
#define RPB_3(M, x) RPB_2(M, x) M(2, x)
#define RPB_4(M, x) RPB_3(M, x) M(3, x)
#define RPB_5(M, x) RPB_4(M, x) M(4, x)
#define RPB_6(M, x) RPB_5(M, x) M(5, x)
#define RPB_7(M, x) RPB_6(M, x) M(6, x)
#define RPB_8(M, x) RPB_7(M, x) M(7, x)
#define RP_REPB(n, M, x) RP_REPB_X(n, M, x)
#define RP_REPB_X(n, M, x) RPB_##n(M, x)

// Elements [0, 4) of p, zero past the first n (n <= 0: none read).
inline float4 rp_load4(__global const float* p, int n) {
  float4 x = (float4)(0.0f);
  if (n > 0) x.x = p[0];
  if (n > 1) x.y = p[1];
  if (n > 2) x.z = p[2];
  if (n > 3) x.w = p[3];
  return x;
}

// Writes x to p[0..4) (local rows have an odd stride, so no float4 store).
inline void rp_put4(__local float* p, float4 x) {
  p[0] = x.x;
  p[1] = x.y;
  p[2] = x.z;
  p[3] = x.w;
}

__kernel __attribute__((reqd_work_group_size(RP_NT, 1, 1))) void rel_pos_terms_f32(
    __global const float* q, long q_off, long q_sb, long q_sh, long q_sn,  //
    __global const float* tab_h, __global const float* tab_w,              //
    __global float* rel_h, __global float* rel_w,                           //
    int H, int kh, int kw, int D) {
  __local float Qs[RP_QR * RP_LD];  // query rows x the D chunk
  __local float Ts[RP_TR * RP_LD];  // table rows x the D chunk
  const int lid = get_local_id(0);
  const int tk = lid % RP_TK, tp = (lid / RP_TK) % RP_TP, tg = lid / (RP_TK * RP_TP);
  const int bh = get_group_id(1);
  const int b = bh / H, h = bh - b * H;
  const int N = kh * kw;

  // The tile: its mode, then its (group, position, key) block, keys fastest.
  int t = get_group_id(0);
  const int tiles_h = ((kh + RP_GB - 1) / RP_GB) * ((kw + RP_BP - 1) / RP_BP) * ((kh + RP_BK - 1) / RP_BK);
  const int mode_w = t >= tiles_h;
  if (mode_w) t -= tiles_h;
  const int G = mode_w ? kw : kh, P = mode_w ? kh : kw, K = G;
  const int ng = mode_w ? 1 : kw, np = mode_w ? kw : 1;  // n = g*ng + p*np
  __global const float* tab = mode_w ? tab_w : tab_h;
  __global float* dst = mode_w ? rel_w : rel_h;
  const int nkt = (K + RP_BK - 1) / RP_BK, npt = (P + RP_BP - 1) / RP_BP;
  const int k0 = (t % nkt) * RP_BK;
  t /= nkt;
  const int p0 = (t % npt) * RP_BP;
  const int g0 = (t / npt) * RP_GB;
  const int row0 = g0 - (k0 + RP_BK - 1) + K - 1;  // table row of Ts row 0

  __global const float* qb = q + q_off + b * q_sb + h * q_sh;

  float acc[RP_TM][RP_TN];
#define RP_ZERO(j, i) acc[i][j] = 0.0f;
#define RP_ZERO_ROW(i, _) RP_REPB(RP_TN, RP_ZERO, i)
  RP_REPA(RP_TM, RP_ZERO_ROW, _)

  // This work-item's first query row and table row (table row for key j: minus j*RP_TK rows).
  __local const float* qr = Qs + (tg * RP_BP + tp) * RP_LD;
  __local const float* tr = Ts + (tg - tk + RP_BK - 1) * RP_LD;

  for (int c0 = 0; c0 < D; c0 += RP_DC) {
    barrier(CLK_LOCAL_MEM_FENCE);  // the previous chunk is no longer read
    for (int e = lid; e < RP_QR * (RP_DC / 4); e += RP_NT) {
      const int r = e / (RP_DC / 4), d4 = e - r * (RP_DC / 4), d = c0 + 4 * d4;
      const int gg = r / RP_BP, p = p0 + r - gg * RP_BP, g = g0 + gg;
      const bool ok = g < G && p < P;
      rp_put4(Qs + r * RP_LD + 4 * d4, rp_load4(qb + (ok ? (long)(g * ng + p * np) * q_sn + d : 0), ok ? D - d : 0));
    }
    for (int e = lid; e < RP_TR * (RP_DC / 4); e += RP_NT) {
      const int r = e / (RP_DC / 4), d4 = e - r * (RP_DC / 4), d = c0 + 4 * d4;
      const int row = row0 + r;
      const bool ok = row >= 0 && row < 2 * K - 1;
      rp_put4(Ts + r * RP_LD + 4 * d4, rp_load4(tab + (ok ? (long)row * D + d : 0), ok ? D - d : 0));
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    for (int d = 0; d < RP_DC; ++d) {
      float a[RP_TM], w[RP_TN];
#define RP_LOAD_A(i, _) a[i] = qr[(i)*RP_TP * RP_LD + d];
#define RP_LOAD_W(j, _) w[j] = tr[d - (j)*RP_TK * RP_LD];
#define RP_FMA(j, i) acc[i][j] = fma(a[i], w[j], acc[i][j]);
#define RP_FMA_ROW(i, _) RP_REPB(RP_TN, RP_FMA, i)
      RP_REPA(RP_TM, RP_LOAD_A, _)
      RP_REPB(RP_TN, RP_LOAD_W, _)
      RP_REPA(RP_TM, RP_FMA_ROW, _)
    }
  }

  const int g = g0 + tg;
  if (g >= G) return;
#define RP_STORE(j, i)                 \
  {                                    \
    const int k = k0 + tk + (j)*RP_TK; \
    if (k < K) out[k] = acc[i][j];     \
  }
#define RP_STORE_ROW(i, _)                                              \
  {                                                                     \
    const int p = p0 + tp + (i)*RP_TP;                                  \
    if (p < P) {                                                        \
      __global float* out = dst + ((long)bh * N + g * ng + p * np) * K; \
      RP_REPB(RP_TN, RP_STORE, i)                                       \
    }                                                                   \
  }
  RP_REPA(RP_TM, RP_STORE_ROW, _)
}

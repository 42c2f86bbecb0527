// Row-wise argmax with a banned-id list (greedy decoding), fp32.
//   argmax_rows_f32: x [R,N], banned [nb] i32 (applied to every row; or, with ban_stride = nb, a
//     list per row: banned [R,nb], padded with -1), idx [R] i32:
//     idx[r] = argmax_j v(r,j),  v(r,j) = -inf if j is in banned[0..nb) else x[r,j]
//   Ties go to the lowest index (torch.argmax); NaN never wins (unlike torch.argmax); a row whose
//   candidates are all -inf (or banned) gives the lowest non-NaN index; a row of NaN only gives -1.
//   Banned ids outside [0,N) are ignored; duplicates are harmless.
// Index mapping: one work-group of WG work-items per row (get_group_id(0) = r). The row is walked
//   in column tiles of BAN_BITS columns; when nb > 0 the banned ids falling in the tile are first
//   set in a local bitmap (BAN_BITS bits, atomic_or), so the ban costs O(1) per element for any nb.
//   Each work-item keeps the best (value, index) of columns l, l+WG, ... (increasing, so the first
//   of equal maxima), then a local-memory tree reduction of (value, index) pairs.
// Tunables: WG (work-group size, power of two <= 256, default 256), BAN_BITS (columns per tile,
//   multiple of 32, default 65536 = 8 KiB of local memory).
// Local memory: BAN_BITS/8 + 8*WG bytes (10 KiB by default).

#ifndef WG
#define WG 256
#endif
#ifndef BAN_BITS
#define BAN_BITS 65536
#endif
#define BAN_WORDS (BAN_BITS / 32)
#define NO_INDEX 0x7fffffff

// (v, i) beats (bv, bi): larger value, or equal value and lower index. NaN never beats anything.
inline int better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void argmax_rows_f32(__global const float* x, int N,
                                                                               __global const int* banned_all, int nb,
                                                                               int ban_stride, __global int* idx) {
  __local uint bits[BAN_WORDS];
  __local float sv[WG];
  __local int si[WG];
  const int r = get_group_id(0);
  const int l = get_local_id(0);
  __global const float* xr = x + (size_t)r * N;
  __global const int* banned = banned_all + (size_t)r * ban_stride;
  float bv = -INFINITY;
  int bi = NO_INDEX;
  for (int base = 0; base < N; base += BAN_BITS) {
    const int end = min(N - base, BAN_BITS);  // columns of this tile, relative to base
    if (nb > 0) {
      for (int w = l; w < BAN_WORDS; w += WG) bits[w] = 0u;
      barrier(CLK_LOCAL_MEM_FENCE);
      for (int i = l; i < nb; i += WG) {
        const int b = banned[i] - base;
        if (b >= 0 && b < end) atomic_or(&bits[b >> 5], 1u << (b & 31));
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int j = l; j < end; j += WG) {
      float v = xr[base + j];
      if (nb > 0 && ((bits[j >> 5] >> (j & 31)) & 1u)) v = -INFINITY;
      if (better(v, base + j, bv, bi)) {
        bv = v;
        bi = base + j;
      }
    }
    if (nb > 0) barrier(CLK_LOCAL_MEM_FENCE);  // the bitmap is cleared for the next tile
  }
  sv[l] = bv;
  si[l] = bi;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (l < s && better(sv[l + s], si[l + s], sv[l], si[l])) {
      sv[l] = sv[l + s];
      si[l] = si[l + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) idx[r] = si[0] == NO_INDEX ? -1 : si[0];
}

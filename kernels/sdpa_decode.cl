// Decode attention (sdpa_decode_f32, sdpa_decode_batch_f32) and the combine passes that merge key
// splits (sdpa_combine_f32 for both this file's single decode and sdpa.cl's flash kernel,
// sdpa_combine_batch_f32); described at the top of sdpa.cl, built with the same defines.

#include "sdpa_common.cl"

#define DEC_LANES (DEC_NT / DEC_BK)
#define DEC_LDK (DQ + 4)

// One work-group's share of a decode row: the keys c0..c1 of one (sequence, head) walked in tiles
// of DEC_BK with an online softmax; -> m, l and (work-item d < HEAD_DIM) acc. The single-sequence
// and the batched kernel both run this, so a row's result is the same bits in either.
inline void decode_split(__global const kvtype* kb, __global const kvtype* vb, long k_sn, long v_sn, int c0, int c1,
                         int flags, __global const float* bias, long b_off, long b_sb, long b_sh, long b_sq,
                         __global const float* relh, __global const float* relw, int kh, int kw, int b, int h,
                         int H, int Nq, int i, __local float* Qd, __local float* Ks, __local float* red,
                         __local float* Sd, __local float* Pd, float* m_out, float* l_out, float* acc_out) {
  const int lid = get_local_id(0);
  float m = -INFINITY, l = 0.0f, acc = 0.0f;
  const int kj = lid % DEC_BK, lane = lid / DEC_BK;
  for (int k0 = c0; k0 < c1; k0 += DEC_BK) {
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < DEC_BK * (DQ / 4); e += DEC_NT) {
      int c = e / (DQ / 4), d = (e - c * (DQ / 4)) * 4;
      int j = k0 + c;
      vstore4(j < c1 ? load_kv4(kb + j * k_sn, d) : (float4)(0.0f), 0, Ks + c * DEC_LDK + d);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float ps = 0.0f;
    for (int d = lane * 4; d < DQ; d += 4 * DEC_LANES) ps += dot(vload4(0, Qd + d), vload4(0, Ks + kj * DEC_LDK + d));
    red[lane * DEC_BK + kj] = ps;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < DEC_BK) {
      float x = 0.0f;
      for (int t = 0; t < DEC_LANES; ++t) x += red[t * DEC_BK + lid];
      const int j = k0 + lid;
      x = j < c1 ? x + sdpa_bias(flags, bias, b_off, b_sb, b_sh, b_sq, relh, relw, kh, kw, b, h, H, Nq, i, j)
                 : -INFINITY;
      Sd[lid] = x;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float mt = m;
    for (int c = 0; c < DEC_BK; c += 4) {
      float4 x = vload4(0, Sd + c);
      mt = fmax(mt, fmax(fmax(x.x, x.y), fmax(x.z, x.w)));
    }
    const float mu = mt == -INFINITY ? 0.0f : mt;
    const float alpha = exp(m - mu);
    m = mt;
    if (lid < DEC_BK) Pd[lid] = exp(Sd[lid] - mu);
    barrier(CLK_LOCAL_MEM_FENCE);
    l *= alpha;
    acc *= alpha;
    const int nj = min(DEC_BK, c1 - k0);
    for (int j = 0; j < nj; ++j) {
      const float p = Pd[j];
      l += p;
      if (lid < HEAD_DIM) acc = fma(p, LOADKV(vb, (k0 + j) * v_sn + lid), acc);
    }
  }

  *m_out = m;
  *l_out = l;
  *acc_out = acc;
}

// The result of one split: out = acc / l when the row has one split, else the partial (m, l, acc).
inline void decode_store(__global float* out_row, __global float* pr, int nsplit, float m, float l, float acc) {
  const int lid = get_local_id(0);
  if (nsplit == 1) {
    if (lid < HEAD_DIM) out_row[lid] = l > 0.0f ? acc / l : 0.0f;
  } else {
    if (lid == 0) {
      pr[0] = m;
      pr[1] = l;
    }
    if (lid < HEAD_DIM) pr[2 + lid] = acc;
  }
}

__kernel __attribute__((reqd_work_group_size(DEC_NT, 1, 1))) void sdpa_decode_f32(
    __global const float* q, long q_off, long q_sb, long q_sh, long q_sn,  //
    __global const kvtype* k, long k_off, long k_sb, long k_sh, long k_sn,  //
    __global const kvtype* v, long v_off, long v_sb, long v_sh, long v_sn,  //
    __global float* o, long o_off, long o_sb, long o_sh, long o_sn,        //
    __global const float* bias, long b_off, long b_sb, long b_sh, long b_sq,
    __global const float* relh, __global const float* relw, int kh, int kw,  //
    int H, int group, int Nq, int Nk, float scale, int flags, int prefix,  //
    int nsplit, int chunk, __global float* part) {
  __local float Qd[DQ];
  __local float Ks[DEC_BK * DEC_LDK];
  __local float red[DEC_NT];
  __local float Sd[DEC_BK];
  __local float Pd[DEC_BK];

  const int lid = get_local_id(0);
  const int split = get_group_id(1);
  const int row = get_group_id(2);  // (b*H + h)*Nq + i
  const int bh = row / Nq, i = row - bh * Nq;
  const int b = bh / H, h = bh - b * H, hk = h / group;

  __global const kvtype* kb = k + k_off + b * k_sb + hk * k_sh;
  __global const kvtype* vb = v + v_off + b * v_sb + hk * v_sh;
  if (lid < DQ / 4) vstore4(load_row4(q + q_off + b * q_sb + h * q_sh + i * q_sn, lid * 4) * scale, 0, Qd + lid * 4);

  int k_end = Nk;
  if (flags & SDPA_CAUSAL) k_end = clamp(max(i + Nk - Nq + 1, prefix), 0, Nk);
  const int c0 = split * chunk;
  const int c1 = min(k_end, c0 + chunk);

  float m, l, acc;
  decode_split(kb, vb, k_sn, v_sn, c0, c1, flags, bias, b_off, b_sb, b_sh, b_sq, relh, relw, kh, kw, b, h, H, Nq, i, Qd,
               Ks, red, Sd, Pd, &m, &l, &acc);
  decode_store(o + o_off + b * o_sb + h * o_sh + i * o_sn, part + ((long)row * nsplit + split) * (HEAD_DIM + 2), nsplit,
               m, l, acc);
}

// sdpa_decode_batch_f32: one decode query per sequence of a batch, each against its own rows of
// one KV cache [rows, 2, Hkv, HEAD_DIM] (K then V per row), with its own key count and split.
// seq [B][5] i32: first cache row, keys Nk, nsplit, chunk, offset of its partials in part. The
// host chooses nsplit and chunk per sequence as sdpa_decode_f32's launch for that sequence alone
// would, and both kernels run decode_split: a sequence's output is bit for bit its own decode.
// Grid (DEC_NT, max nsplit, B*H); work-groups past a sequence's nsplit return at once.
// KV_APPEND (defined): the decoder's attention prologue in the same launch, as rope_kv_append_f32
// (rope.cl) computes it: q is the raw fused projection of the step, row b [H q heads, Hkv k heads,
// Hkv v heads] of HEAD_DIM, q_sh = HEAD_DIM; each work-group rotates its q head itself (position
// pos[b], inv_freq [HEAD_DIM/2]), and the work-group(s) whose split holds the new token (the last
// key, cache row sp[0] + Nk - 1) rotate its k head and write it and its v head to that row, then
// read it back like every other key (a global fence within the work-group). With grouped heads the
// group's work-groups write the same bits. Nothing else is written: q stays raw.
__kernel __attribute__((reqd_work_group_size(DEC_NT, 1, 1))) void sdpa_decode_batch_f32(
    __global const float* q, long q_sb, long q_sh, __global kvtype* kv, int KV,  //
    __global float* o, long o_sb, long o_sh, __global const int* seq, int H, int group, float scale,
    __global float* part
#ifdef KV_APPEND
    ,
    __global const int* pos, __global const float* inv_freq
#endif
) {
  __local float Qd[DQ];
  __local float Ks[DEC_BK * DEC_LDK];
  __local float red[DEC_NT];
  __local float Sd[DEC_BK];
  __local float Pd[DEC_BK];

  const int lid = get_local_id(0);
  const int split = get_group_id(1);
  const int row = get_group_id(2);  // b*H + h
  const int b = row / H, h = row - b * H, hk = h / group;
  __global const int* sp = seq + b * 5;
  const int Nk = sp[1], nsplit = sp[2], chunk = sp[3];
  if (split >= nsplit) return;  // uniform over the work-group, before any barrier
  const long k_sn = 2 * (long)KV;
  __global kvtype* kb = kv + (long)sp[0] * k_sn + hk * HEAD_DIM;
  __global const kvtype* vb = kb + KV;
  const int c0 = split * chunk;
  const int c1 = min(Nk, c0 + chunk);  // causal with one query: every cached key
#ifdef KV_APPEND
  {
    const int hd2 = HEAD_DIM / 2, Hkv = KV / HEAD_DIM;
    __global const float* qr = q + b * q_sb;
    const bool new_key = Nk - 1 >= c0 && Nk - 1 < c1;  // this split reads the new token (uniform)
    __global kvtype* cr = kb + (long)(Nk - 1) * k_sn;
    __global const float* kq = qr + (H + hk) * q_sh;
    __global const float* vq = qr + (H + Hkv + hk) * q_sh;
    for (int d = lid; d < hd2; d += DEC_NT) {  // rope_kv_append_f32's arithmetic, then the scale
      const float angle = (float)pos[b] * inv_freq[d];
      const float c = cos(angle), s = sin(angle);
      const float x1 = qr[h * q_sh + d], x2 = qr[h * q_sh + d + hd2];
      const float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
      Qd[d] = y1 * scale;
      Qd[d + hd2] = y2 * scale;
      if (new_key) {
        const float k1 = kq[d], k2 = kq[d + hd2];
        STOREKV(k1 * c - k2 * s, cr, d);
        STOREKV(k2 * c + k1 * s, cr, d + hd2);
        STOREKV(vq[d], cr + KV, d);
        STOREKV(vq[d + hd2], cr + KV, d + hd2);
      }
    }
    for (int d = HEAD_DIM + lid; d < DQ; d += DEC_NT) Qd[d] = 0.0f;  // DQ's padding past HEAD_DIM
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);  // the new row is read by other work-items
  }
#else
  if (lid < DQ / 4) vstore4(load_row4(q + b * q_sb + h * q_sh, lid * 4) * scale, 0, Qd + lid * 4);
#endif
  float m, l, acc;
  decode_split(kb, vb, k_sn, k_sn, c0, c1, SDPA_CAUSAL, q, 0, 0, 0, 0, q, q, 0, 0, b, h, H, 1, 0, Qd, Ks, red, Sd, Pd,
               &m, &l, &acc);
  decode_store(o + b * o_sb + h * o_sh, part + sp[4] + ((long)h * nsplit + split) * (HEAD_DIM + 2), nsplit, m, l,
               acc);
}

// Output dim d of one row from its nsplit partials (m, l, acc[D]) at pr, in split order.
inline float combine_row(__global const float* pr, int nsplit, int d) {
  float mt = -INFINITY;
  for (int s = 0; s < nsplit; ++s) mt = fmax(mt, pr[s * (HEAD_DIM + 2)]);
  const float mu = mt == -INFINITY ? 0.0f : mt;
  float l = 0.0f, acc = 0.0f;
  for (int s = 0; s < nsplit; ++s) {
    __global const float* p = pr + s * (HEAD_DIM + 2);
    const float w = exp(p[0] - mu);
    l = fma(w, p[1], l);
    acc = fma(w, p[2 + d], acc);
  }
  return l > 0.0f ? acc / l : 0.0f;
}

// Merges the nsplit partial results (m, l, acc[D]) of each row (b*H + h)*Nq + i written by either
// kernel above: grid (round_up(D, wg), B*H*Nq), one work-item per output element.
__kernel void sdpa_combine_f32(__global const float* part, int nsplit, __global float* o, long o_off, long o_sb,
                               long o_sh, long o_sn, int H, int Nq) {
  const int d = get_global_id(0);
  const int row = get_global_id(1);
  if (d >= HEAD_DIM) return;
  const int bh = row / Nq, i = row - bh * Nq;
  const int b = bh / H, h = bh - b * H;
  o[o_off + b * o_sb + h * o_sh + i * o_sn + d] = combine_row(part + (long)row * nsplit * (HEAD_DIM + 2), nsplit, d);
}

// The batched decode's partials (sdpa_decode_batch_f32, seq as there): grid (round_up(D, wg), B*H);
// rows of one split were written whole by the decode kernel.
__kernel void sdpa_combine_batch_f32(__global const float* part, __global const int* seq, __global float* o, long o_sb,
                                     long o_sh, int H) {
  const int d = get_global_id(0);
  const int row = get_global_id(1);
  if (d >= HEAD_DIM) return;
  const int b = row / H, h = row - b * H;
  __global const int* sp = seq + b * 5;
  const int nsplit = sp[2];
  if (nsplit == 1) return;
  o[b * o_sb + h * o_sh + d] = combine_row(part + sp[4] + (long)h * nsplit * (HEAD_DIM + 2), nsplit, d);
}

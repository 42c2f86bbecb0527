// Scaled dot-product attention (kernels/sdpa.cl), fp32:
//
//   out = softmax(scale * q k^T + bias) v        per (batch, query head), over the keys
//
// q [B,H,Nq,D]; k, v [B,Hkv,Nk,D] with H a multiple of Hkv (query head h uses kv head
// h / (H/Hkv)); out [B,H,Nq,D]; D <= 128. Each of them is an AttnView: a strided [B,H,N,D] window
// into a tensor, so that q/k/v can be read straight out of a fused qkv projection [B,N,3,H,D] and
// out written as [B,N,H,D] without transposes. k and v may be stored as f16 or bf16 (both
// alike: a decoder's KV cache), widened as the kernels load them; everything else is f32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/runtime.h"

namespace dsocr::ops {

// A strided [B,H,N,D] view: element (b,h,n,d) is t[offset + b*sb + h*sh + n*sn + d] (elements,
// d contiguous). The tensor's own shape only bounds the view.
struct AttnView {
  Tensor t;
  size_t offset = 0;
  int64_t B = 0, H = 0, N = 0, D = 0;  // logical shape
  int64_t sb = 0, sh = 0, sn = 0;      // strides in elements

  // t [B,H,N,D], dense.
  static AttnView bhnd(const Tensor& t);
  // t [B,N,H,D], dense (the layout attention output is projected from).
  static AttnView bnhd(const Tensor& t);
  // Part `which` of a fused projection t [B,N,S,H,D] (S parts of H heads each, e.g. qkv: S=3,
  // which 0/1/2 = q/k/v), dense.
  static AttnView fused(const Tensor& t, int which);
  // Heads [h0, h0+H) of t [B,N,Htot,D] (Htot = all heads of a fused projection such as Qwen2's
  // [q heads | k heads | v heads]), dense.
  static AttnView heads(const Tensor& t, int64_t h0, int64_t H);

  Shape shape() const { return {B, H, N, D}; }
  // Throws Error "<op>: <name> ..." unless the view has an f32 tensor (kv: f16 or bf16 too), no
  // empty dimension, no negative stride, and stays inside the tensor.
  void check(const char* op, const char* name, bool kv = false) const;
};

// A dense additive bias broadcastable to [B,H,Nq,Nk]: element (b,h,i,j) is
// t[offset + b*sb + h*sh + i*sq + j]; B, H and Nq are 1 (broadcast, stride ignored) or the full size.
struct AttnBias {
  Tensor t;
  size_t offset = 0;
  int64_t B = 1, H = 1, Nq = 0, Nk = 0;
  int64_t sb = 0, sh = 0, sq = 0;

  // t [Nq,Nk], [Bb,Nq,Nk] or [Bb,Hb,Nq,Nk] dense, Bb and Hb 1 or full; size-1 dims broadcast.
  static AttnBias dense(const Tensor& t);
};

// SAM's decomposed relative position bias: bias[b,h,i,j] = rel_h[b,h,i,j / kw] + rel_w[b,h,i,j % kw]
// (see rel_pos.h for building the terms). Never materialised as [Nq,Nk].
struct RelPosBias {
  Tensor rel_h;  // [B,H,Nq,kh] dense
  Tensor rel_w;  // [B,H,Nq,kw] dense, kh*kw = Nk
};

enum class SdpaAlgo {
  automatic,  // decode for Nq == 1, flash otherwise
  flash,      // tiled online softmax over key tiles
  decode,     // one work-group per (query row, key split), then a combine pass
};

struct SdpaParams {
  float scale = 1.f;
  bool causal = false;                  // query i sees keys j <= i + Nk - Nq (aligned to the end)
  int64_t causal_prefix = 0;            // with causal: keys j < causal_prefix are seen by every query
                                        // (a rule, no mask in memory: DeepSeek-OCR-2's encoder, N image
                                        // tokens then N learned queries, prefix N)
  std::optional<AttnBias> bias;         // added to the scaled logits
  std::optional<RelPosBias> rel_pos;    // added to the scaled logits (and to `bias`)
  SdpaAlgo algo = SdpaAlgo::automatic;  // tests force a variant; the model leaves it
  int kv_splits = 0;                    // key splits (partials merged by a combine pass); 0 = auto
};

// out = softmax(scale*q k^T + bias [+ causal mask]) v. out is written (the Tensor inside the view
// is shared) and must not overlap k or v. Rows with no visible key come out as zeros.
// Throws Error on mismatched shapes, dtypes or out-of-bounds views, NotImplemented for D > 128.
void sdpa(Runtime& rt, const AttnView& q, const AttnView& k, const AttnView& v, const AttnView& out,
          const SdpaParams& p);

// Dense layouts: q [B,H,Nq,D], k and v [B,Hkv,Nk,D], bias (or nullptr) [Nq,Nk], [B|1,Nq,Nk] or
// [B|1,H|1,Nq,Nk], out [B,H,Nq,D].
void sdpa(Runtime& rt, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* bias, Tensor& out, float scale,
          bool causal);

// Decode attention for a batch of B sequences in one launch (plus one combine pass): sequence b's
// one query against keys and values in rows first_row[b] .. first_row[b] + n_keys[b] - 1 of one
// KV cache [rows, 2, Hkv, D] (K then V per row; f32, f16 or bf16), causal. Each sequence is split
// over its keys as sdpa() splits it alone, and both run the same per-row code: out for sequence b
// is bit for bit sdpa()'s for that sequence (the batched decoder's exactness rests on this).
struct SdpaDecodeBatch {
  Tensor seq;  // [B,5] i32 on the device: first row, keys, splits, keys per split, partials offset
  int64_t B = 0, H = 0, D = 0, max_split = 1, part_floats = 0;
  int64_t rows_needed = 0;  // cache rows the sequences reach (max of first row + keys)
};
// The plan for H query heads of dim D (the same for every layer of a decode step).
SdpaDecodeBatch sdpa_decode_batch_plan(Runtime& rt, int64_t H, int64_t D, const std::vector<int64_t>& first_row,
                                       const std::vector<int64_t>& n_keys);
// q: row b's head h at q[b*q_sb + h*D ..], f32; out likewise with o_sb.
// append (optional): the decoder's attention prologue in the same launch (KV_APPEND in
// kernels/sdpa_decode.cl). q is then the step's raw fused projection, row b [H q heads, Hkv k
// heads, Hkv v heads] of D at q[b*q_sb ..]; sequence b's q is rotated at positions[b] and its new
// token (the last of its Nk keys, cache row first_row + Nk - 1) rotated and written to the cache
// before it is read: rope_kv_append (rows first_row + Nk - 1) then sdpa_decode_batch on the
// rotated q, bit for bit, in one launch; q is left as it was.
struct DecodeAppend {
  Tensor positions;  // [B] i32
  Tensor inv_freq;   // [D/2] f32 (RopeFreqs::inv_freq)
};
void sdpa_decode_batch(Runtime& rt, const Tensor& q, int64_t q_sb, Tensor& kv_cache, const SdpaDecodeBatch& plan,
                       Tensor& out, int64_t o_sb, float scale, const DecodeAppend* append = nullptr);

}  // namespace dsocr::ops

// DeepSeek-V2 MoE language model of DeepSeek-OCR (model-spec §1.5, §5), fp32 on the device:
// RMSNorm, MHA/GQA with half-rotation RoPE (causal), a dense SwiGLU layer 0 and MoE layers
// (softmax router, greedy top-k, shared experts), final norm, lm_head. Prefill runs all prompt
// tokens in one pass; decode runs one token against a device-resident KV cache.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "runtime/ops/moe.h"
#include "runtime/ops/rope.h"
#include "runtime/runtime.h"

namespace dsocr {

using Taps = std::map<std::string, Tensor>;

struct LmLayer {
  bool moe = false;
  Tensor in_norm, post_norm;           // [hidden]
  Tensor qkv_w;                        // [(H + 2*Hkv)*hd, hidden]: q_proj | k_proj | v_proj rows
  Tensor o_w;                          // [hidden, H*hd]
  Tensor mlp_gate_up, mlp_down;        // dense layer: [2*I, hidden] (gate | up rows), [hidden, I]
  Tensor router_w;                     // MoE: [E, hidden]
  ops::MoeExperts experts;             // MoE: stacked routed experts
  Tensor shared_gate_up, shared_down;  // MoE: [2*Is, hidden], [hidden, Is]; undefined without shared experts
};

struct LanguageModel {
  LmConfig cfg;
  Tensor embed;  // [vocab, hidden]
  std::vector<LmLayer> layers;
  Tensor norm;          // [hidden]
  Tensor lm_head;       // [vocab, hidden]
  ops::RopeFreqs rope;  // inverse frequencies [head_dim/2] for rope_theta
};

// One layer; names relative to the layer (self_attn.q_proj.weight, mlp.experts.3.up_proj.weight, ...).
LmLayer load_lm_layer(Runtime& rt, const WeightSource& w, const LmConfig& cfg, int64_t idx);
// The MoE part of layer idx into l (router, stacked experts, shared experts); names relative to
// the MLP (gate.weight, experts.N.gate_proj.weight, shared_experts.up_proj.weight, ...).
void load_lm_moe(Runtime& rt, const WeightSource& w, const LmConfig& cfg, LmLayer& l, int64_t idx);
// y [T, hidden] = MoE(xn) of an MoE layer: routed experts (taps "<prefix>topk_ids"/"topk_weights") + shared.
void lm_moe_forward(Runtime& rt, const LmConfig& cfg, const LmLayer& l, const Tensor& xn, Tensor& y,
                    Taps* taps = nullptr, const std::string& prefix = {});
// The whole LM; names relative to the checkpoint root (model.embed_tokens.weight, model.layers.N., lm_head.weight).
LanguageModel load_lm(Runtime& rt, const WeightSource& w, const LmConfig& cfg);

// Per-layer keys and values of past tokens, side by side: [capacity, 2, Hkv, hd] (k then v of a
// token in one row, so one copy appends both), `length` rows filled.
struct KvCache {
  int64_t capacity = 0, length = 0;
  std::vector<Tensor> kv;
};
// Preallocates `capacity` tokens for every layer, stored as dtype (f32: the reference's
// arithmetic; f16 or bf16: half the memory and bandwidth, each value rounded as it is written and
// widened as attention reads it); throws OutOfDeviceMemory saying how much is needed and how much
// the device has left.
KvCache make_kv_cache(Runtime& rt, const LmConfig& cfg, int64_t capacity, DType dtype = DType::f32);
// The bytes such a cache of `tokens` tokens takes, every layer's keys and values.
uint64_t kv_cache_bytes(const LmConfig& cfg, int64_t tokens, DType dtype);
// "f16" (or "fp16"), "bf16", "f32" (or "fp32"); Error naming the choices otherwise.
DType kv_storage_from_string(const std::string& s);

// x [T, hidden] updated in place by layer `idx`; positions [T] i32 (RoPE with `rope`, see ops::RopeFreqs); the T new
// tokens are appended to kv_cache [capacity, 2, Hkv, hd] at row `past` and attend causally to rows 0..past+T-1. taps
// (optional) get "<prefix>attn_residual", and for MoE layers "<prefix>topk_ids" / "<prefix>topk_weights".
void lm_layer_forward(Runtime& rt, const LmConfig& cfg, const LmLayer& l, const ops::RopeFreqs& rope, Tensor& x,
                      const Tensor& positions, Tensor& kv_cache, int64_t past, Taps* taps = nullptr,
                      const std::string& prefix = {});

// A decode batch: one new token for each of B sequences that share one cache per layer
// ([rows, 2, Hkv, hd]): sequence b's past keys and values are rows first_row[b] ..
// first_row[b] + length[b] - 1, and its new token is written to the row after them, at position
// length[b].
struct DecodeBatch {
  std::vector<int64_t> first_row, length;
};
// x [B, hidden] (the new tokens' embeddings) -> logits [B, vocab], the caches (one per layer)
// extended by one row per sequence. Each row's logits equal, bit for bit, those lm_forward gives
// for that sequence alone (the same kernels in the same order per row: matrix-vector products
// for any number of rows, the MoE decode path, and attention for all sequences in one launch that
// splits each sequence's keys as it would be split alone: ops::sdpa_decode_batch). From
// Tuning::batch_gemm_rows sequences on (when set), the dense products and the MoE blocks take the
// GEMM paths instead: each row then within rounding of its one-sequence logits, not bit for bit.
Tensor lm_decode_batch(Runtime& rt, const LanguageModel& lm, Tensor x, std::vector<Tensor>& caches,
                       const DecodeBatch& batch);

// Token embeddings for ids (validated against the vocabulary), with image_embeds [n, hidden]
// written into the slots holding image_token_id, in order (their count must equal n).
Tensor lm_embed(Runtime& rt, const LanguageModel& lm, const std::vector<int32_t>& ids, const Tensor* image_embeds,
                int32_t image_token_id);

// Runs x [T, hidden] (positions cache.length.. onward) through every layer, appending to the
// cache, then the final norm and lm_head: logits [T, vocab], or [1, vocab] for the last token
// only when last_only. taps: "layers.N", "norm" (and the per-layer taps).
Tensor lm_forward(Runtime& rt, const LanguageModel& lm, Tensor x, KvCache& cache, bool last_only, Taps* taps = nullptr);

}  // namespace dsocr

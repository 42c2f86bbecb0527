#include "model/decoder.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/gemm.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/sdpa.h"

namespace dsocr {
namespace {

// Stacks row blocks into one tensor: parts loaded one after another at row offsets.
Tensor stack_rows(Runtime& rt, const WeightSource& w, const std::vector<std::string>& names, int64_t rows, int64_t cols,
                  const std::string& what) {
  Tensor out = rt.empty({static_cast<int64_t>(names.size()) * rows, cols}, DType::f32, what);
  for (size_t i = 0; i < names.size(); ++i) {
    Tensor part = w.load(rt, names[i], {rows, cols});
    rt.copy(part, out, part.bytes(), 0, i * part.bytes());
  }
  return out;
}

// [a_rows + b_rows + ..., cols] from tensors of different row counts.
Tensor concat_rows(Runtime& rt, const WeightSource& w, const std::vector<std::pair<std::string, int64_t>>& parts,
                   int64_t cols, const std::string& what) {
  int64_t rows = 0;
  for (auto& p : parts) rows += p.second;
  Tensor out = rt.empty({rows, cols}, DType::f32, what);
  size_t off = 0;
  for (auto& [name, r] : parts) {
    Tensor part = w.load(rt, name, {r, cols});
    rt.copy(part, out, part.bytes(), 0, off);
    off += part.bytes();
  }
  return out;
}

// SwiGLU MLP y [T, hidden] = down(silu(gate x) * up x) with gate_up [2I, hidden] fused.
void swiglu_mlp(Runtime& rt, const Tensor& xn, const Tensor& gate_up, const Tensor& down, Tensor& y) {
  const int64_t T = xn.dim(0), I = down.dim(1);
  Tensor gu = rt.empty({T, 2 * I}, DType::f32, "mlp gate|up");
  linear(rt, xn, gate_up, nullptr, gu);
  Tensor act = rt.empty({T, I}, DType::f32, "mlp act");
  ops::swiglu(rt, gu, gu, act, static_cast<int>(T), static_cast<int>(I), static_cast<int>(2 * I), 0,
              static_cast<int>(I));
  linear(rt, act, down, nullptr, y);
}

}  // namespace

void load_lm_moe(Runtime& rt, const WeightSource& w, const LmConfig& c, LmLayer& l, int64_t idx) {
  const int64_t D = c.hidden_size;
  l.moe = true;
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size;
  l.router_w = w.load(rt, "gate.weight", {E, D});
  ops::MoeExperts& ex = l.experts;
  ex.E = E;
  ex.I = I;
  ex.H = D;
  ex.gate_up = rt.empty({E, 2 * I, D}, DType::f32, fmt::format("layer {} experts gate|up", idx));
  ex.down = rt.empty({E, D, I}, DType::f32, fmt::format("layer {} experts down", idx));
  const size_t gu_bytes = static_cast<size_t>(2 * I * D) * 4, dn_bytes = static_cast<size_t>(D * I) * 4;
  for (int64_t e = 0; e < E; ++e) {
    std::string p = fmt::format("experts.{}.", e);
    Tensor g = w.load(rt, p + "gate_proj.weight", {I, D}), u = w.load(rt, p + "up_proj.weight", {I, D});
    Tensor d = w.load(rt, p + "down_proj.weight", {D, I});
    rt.copy(g, ex.gate_up, g.bytes(), 0, e * gu_bytes);
    rt.copy(u, ex.gate_up, u.bytes(), 0, e * gu_bytes + g.bytes());
    rt.copy(d, ex.down, dn_bytes, 0, e * dn_bytes);
  }
  if (c.n_shared_experts > 0) {
    const int64_t Is = I * c.n_shared_experts;
    l.shared_gate_up = stack_rows(rt, w, {"shared_experts.gate_proj.weight", "shared_experts.up_proj.weight"}, Is, D,
                                  "shared gate|up");
    l.shared_down = w.load(rt, "shared_experts.down_proj.weight", {D, Is});
  }
}

LmLayer load_lm_layer(Runtime& rt, const WeightSource& w, const LmConfig& c, int64_t idx) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim();
  if (H * hd != D || H % Hkv != 0)
    throw Error(fmt::format("config: {} heads of {} do not make hidden_size {} (or are not a multiple of {} kv heads)",
                            H, hd, D, Hkv));
  LmLayer l;
  l.in_norm = w.load(rt, "input_layernorm.weight", {D});
  l.post_norm = w.load(rt, "post_attention_layernorm.weight", {D});
  l.qkv_w = concat_rows(rt, w,
                        {{"self_attn.q_proj.weight", H * hd},
                         {"self_attn.k_proj.weight", Hkv * hd},
                         {"self_attn.v_proj.weight", Hkv * hd}},
                        D, fmt::format("layer {} qkv", idx));
  l.o_w = w.load(rt, "self_attn.o_proj.weight", {D, H * hd});
  l.moe = c.is_moe_layer(idx);
  if (!l.moe) {
    const int64_t I = c.intermediate_size;
    l.mlp_gate_up = stack_rows(rt, w, {"mlp.gate_proj.weight", "mlp.up_proj.weight"}, I, D, "dense gate|up");
    l.mlp_down = w.load(rt, "mlp.down_proj.weight", {D, I});
    return l;
  }
  load_lm_moe(rt, SubWeights(w, "mlp."), c, l, idx);
  return l;
}

LanguageModel load_lm(Runtime& rt, const WeightSource& w, const LmConfig& c) {
  LanguageModel lm;
  lm.cfg = c;
  lm.embed = w.load(rt, "model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    lm.layers.push_back(load_lm_layer(rt, SubWeights(w, fmt::format("model.layers.{}.", i)), c, i));
  lm.norm = w.load(rt, "model.norm.weight", {c.hidden_size});
  lm.lm_head = w.load(rt, "lm_head.weight", {c.vocab_size, c.hidden_size});
  lm.rope = ops::RopeFreqs::make(rt, c.head_dim(), static_cast<float>(c.rope_theta));
  return lm;
}

KvCache make_kv_cache(Runtime& rt, const LmConfig& c, int64_t capacity) {
  if (capacity < 1) throw Error(fmt::format("KV cache: capacity {} must be positive", capacity));
  const int64_t row = c.num_key_value_heads * c.head_dim();
  const uint64_t need = static_cast<uint64_t>(c.num_hidden_layers) * 2 * capacity * row * 4;
  const uint64_t held = rt.memory().current, total = rt.device().global_mem;
  if (held + need > total)
    throw OutOfDeviceMemory(fmt::format(
        "the KV cache for {} tokens needs {:.1f} MiB of device memory, but {} has {:.1f} MiB left ({:.1f} MiB held of "
        "{:.1f} MiB); ask for a shorter context",
        capacity, need / 1048576.0, rt.device().label(), (total - std::min(held, total)) / 1048576.0, held / 1048576.0,
        total / 1048576.0));
  KvCache kv;
  kv.capacity = capacity;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    kv.k.push_back(
        rt.empty({capacity, c.num_key_value_heads, c.head_dim()}, DType::f32, fmt::format("KV cache k {}", i)));
    kv.v.push_back(
        rt.empty({capacity, c.num_key_value_heads, c.head_dim()}, DType::f32, fmt::format("KV cache v {}", i)));
  }
  return kv;
}

void lm_moe_forward(Runtime& rt, const LmConfig& c, const LmLayer& l, const Tensor& xn, Tensor& o, Taps* taps,
                    const std::string& prefix) {
  const int64_t T = xn.dim(0);
  const int64_t E = l.experts.E, K = c.num_experts_per_tok;
  Tensor logits = rt.empty({T, E}, DType::f32, "router logits");
  linear(rt, xn, l.router_w, nullptr, logits);
  Tensor ids = rt.empty({T, K}, DType::i32, "topk ids"), w = rt.empty({T, K}, DType::f32, "topk weights");
  ops::moe_route(rt, logits, static_cast<int>(K), c.norm_topk_prob, static_cast<float>(c.routed_scaling_factor), ids,
                 w);
  if (taps) {
    (*taps)[prefix + "topk_ids"] = ids;
    (*taps)[prefix + "topk_weights"] = w;
  }
  ops::moe_experts(rt, xn, l.experts, ids, w, o);
  if (l.shared_gate_up.defined()) {
    Tensor s = rt.empty(xn.shape, DType::f32, "shared experts");
    swiglu_mlp(rt, xn, l.shared_gate_up, l.shared_down, s);
    ops::add(rt, o, s, o);
  }
}

void lm_layer_forward(Runtime& rt, const LmConfig& c, const LmLayer& l, const ops::RopeFreqs& rope, Tensor& x,
                      const Tensor& positions, Tensor& k_cache, Tensor& v_cache, int64_t past, Taps* taps,
                      const std::string& prefix) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim();
  if (x.rank() != 2 || x.dim(1) != D)
    throw Error(fmt::format("decoder layer: x must be [T,{}], got {}", D, shape_str(x.shape)));
  const int64_t T = x.dim(0), Ntot = H + 2 * Hkv, Q = H * hd, KV = Hkv * hd;
  if (positions.numel() != T || positions.dtype != DType::i32)
    throw Error(fmt::format("decoder layer: positions must be i32 [{}], got {}", T, shape_str(positions.shape)));
  const int64_t cap = k_cache.dim(0);
  if (past < 0 || past + T > cap)
    throw Error(fmt::format("decoder layer: {} past + {} new tokens exceed the KV cache of {}", past, T, cap));
  const float eps = static_cast<float>(c.rms_norm_eps);

  Tensor xn = rt.empty(x.shape, DType::f32, "lm norm");
  ops::rms_norm(rt, x, l.in_norm, xn, eps);
  Tensor qkv = rt.empty({T, Ntot * hd}, DType::f32, "lm qkv");
  linear(rt, xn, l.qkv_w, nullptr, qkv);
  qkv.shape = {1, T, Ntot, hd};
  ops::AttnView q = ops::AttnView::heads(qkv, 0, H), k = ops::AttnView::heads(qkv, H, Hkv);
  ops::rope(rt, q, positions, rope, q);
  ops::rope(rt, k, positions, rope, k);
  ops::copy_rows(rt, qkv, Q, Ntot * hd, k_cache, past * KV, KV, T, KV);
  ops::copy_rows(rt, qkv, Q + KV, Ntot * hd, v_cache, past * KV, KV, T, KV);
  ops::AttnView kc = ops::AttnView::bnhd(reshaped(k_cache, {1, cap, Hkv, hd}));
  ops::AttnView vc = ops::AttnView::bnhd(reshaped(v_cache, {1, cap, Hkv, hd}));
  kc.N = vc.N = past + T;
  Tensor att = rt.empty({1, T, H, hd}, DType::f32, "lm attention");
  ops::SdpaParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.causal = true;
  ops::sdpa(rt, q, kc, vc, ops::AttnView::bnhd(att), p);
  Tensor o = rt.empty(x.shape, DType::f32, "lm o_proj");
  linear(rt, reshaped(att, {T, Q}), l.o_w, nullptr, o);
  ops::add(rt, x, o, x);
  if (taps) (*taps)[prefix + "attn_residual"] = rt.clone(x, "tap attn_residual");

  ops::rms_norm(rt, x, l.post_norm, xn, eps);
  if (!l.moe) {
    swiglu_mlp(rt, xn, l.mlp_gate_up, l.mlp_down, o);
    ops::add(rt, x, o, x);
    return;
  }
  lm_moe_forward(rt, c, l, xn, o, taps, prefix);
  ops::add(rt, x, o, x);
}

Tensor lm_embed(Runtime& rt, const LanguageModel& lm, const std::vector<int32_t>& ids, const Tensor* image_embeds,
                int32_t image_token_id) {
  const int64_t V = lm.cfg.vocab_size, D = lm.cfg.hidden_size, T = static_cast<int64_t>(ids.size());
  if (T == 0) throw Error("language model: the prompt has no tokens");
  int64_t slots = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= V)
      throw Error(
          fmt::format("language model: token id {} at position {} is outside the vocabulary [0, {})", ids[i], i, V));
    slots += ids[i] == image_token_id;
  }
  const int64_t n_img = image_embeds ? image_embeds->dim(0) : 0;
  if (image_embeds && (image_embeds->rank() != 2 || image_embeds->dim(1) != D))
    throw Error(
        fmt::format("language model: image embeddings must be [n,{}], got {}", D, shape_str(image_embeds->shape)));
  if (n_img > 0 && slots != n_img)
    throw Error(fmt::format("language model: the prompt has {} image slots (id {}) for {} image embeddings", slots,
                            image_token_id, n_img));
  Tensor idt = rt.upload(ids, {T});
  Tensor x = rt.empty({T, D}, DType::f32, "embeddings");
  ops::embedding(rt, lm.embed, idt, x);
  if (n_img == 0) return x;
  // Slots in sequence order take the image embeddings in order, one contiguous run at a time.
  const size_t row = static_cast<size_t>(D) * 4;
  int64_t next = 0;
  for (int64_t i = 0; i < T;) {
    if (ids[i] != image_token_id) {
      ++i;
      continue;
    }
    int64_t j = i;
    while (j < T && ids[j] == image_token_id) ++j;
    rt.copy(*image_embeds, x, (j - i) * row, next * row, i * row);
    next += j - i;
    i = j;
  }
  return x;
}

Tensor lm_forward(Runtime& rt, const LanguageModel& lm, Tensor x, KvCache& cache, bool last_only, Taps* taps) {
  const LmConfig& c = lm.cfg;
  const int64_t T = x.dim(0), D = c.hidden_size;
  if (cache.length + T > cache.capacity)
    throw Error(fmt::format("language model: {} cached + {} new tokens exceed the context of {} tokens", cache.length,
                            T, cache.capacity));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) pos[i] = static_cast<int32_t>(cache.length + i);
  Tensor positions = rt.upload(pos, {T});
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    std::string p = fmt::format("layers.{}", i);
    lm_layer_forward(rt, c, lm.layers[i], lm.rope, x, positions, cache.k[i], cache.v[i], cache.length, taps, p + ".");
    if (taps) (*taps)[p] = rt.clone(x, "tap " + p);
  }
  cache.length += T;
  Tensor h = x;
  if (last_only && T > 1) {
    h = rt.empty({1, D}, DType::f32, "last hidden");
    rt.copy(x, h, static_cast<size_t>(D) * 4, static_cast<size_t>((T - 1) * D) * 4, 0);
  }
  Tensor hn = rt.empty(h.shape, DType::f32, "final norm");
  ops::rms_norm(rt, h, lm.norm, hn, static_cast<float>(c.rms_norm_eps));
  if (taps) (*taps)["norm"] = hn;
  Tensor logits = rt.empty({h.dim(0), c.vocab_size}, DType::f32, "logits");
  linear(rt, hn, lm.lm_head, nullptr, logits);
  return logits;
}

}  // namespace dsocr

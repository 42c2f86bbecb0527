#include "model/decoder.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <utility>

#include "runtime/ops/activation.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/moe_decode.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/sdpa.h"

namespace dsocr {
namespace {

// [rows_0 + rows_1 + ..., cols]: the language model's weight matrices stacked by rows, kept in
// their storage dtype when they share one (bf16 from the checkpoint, q8/q4 blocks), else fp32.
Tensor concat_rows(Runtime& rt, const WeightSource& w, const std::vector<std::pair<std::string, int64_t>>& parts,
                   int64_t cols, const std::string& what) {
  constexpr MatrixRole role = MatrixRole::lm_linear;  // every caller's: attention and MLP linears
  int64_t rows = 0;
  std::vector<Tensor> loaded;
  bool same = true;
  for (auto& [name, r] : parts) {
    rows += r;
    loaded.push_back(w.load_matrix(rt, name, {r, cols}, role));
    same = same && loaded.back().dtype == loaded.front().dtype;
  }
  for (size_t i = 0; !same && i < parts.size(); ++i) loaded[i] = w.load(rt, parts[i].first, {parts[i].second, cols});
  Tensor out = rt.empty({rows, cols}, loaded.front().dtype, what);
  size_t off = 0;
  for (const Tensor& part : loaded) {
    rt.copy(part, out, part.bytes(), 0, off);
    off += part.bytes();
  }
  return out;
}

// SwiGLU MLP y [T, hidden] = down(silu(gate x) * up x) with gate_up [2I, hidden] fused; the
// activation rides in the down projection's kernel when decoding.
void swiglu_mlp(Runtime& rt, const Tensor& xn, const Tensor& gate_up, const Tensor& down, Tensor& y,
                LinearPath lp = LinearPath::automatic) {
  const int64_t T = xn.dim(0), I = down.dim(1);
  Tensor gu = rt.empty({T, 2 * I}, DType::f32, "mlp gate|up");
  linear(rt, xn, gate_up, nullptr, gu, lp);
  linear_swiglu(rt, gu, down, y, lp);
}

}  // namespace

void load_lm_moe(Runtime& rt, const WeightSource& w, const LmConfig& c, LmLayer& l, int64_t idx) {
  const int64_t D = c.hidden_size;
  l.moe = true;
  const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size;
  l.router_w = w.load_matrix(rt, "gate.weight", {E, D});
  ops::MoeExperts& ex = l.experts;
  ex.E = E;
  ex.I = I;
  ex.H = D;
  // Every expert's three matrices in one storage dtype: that of the checkpoint where they all
  // share it, else fp32.
  auto load_experts = [&](bool compact) {
    auto get = [&](const std::string& n, const Shape& s) {
      return compact ? w.load_matrix(rt, n, s, MatrixRole::lm_linear) : w.load(rt, n, s);
    };
    for (int64_t e = 0; e < E; ++e) {
      std::string p = fmt::format("experts.{}.", e);
      Tensor g = get(p + "gate_proj.weight", {I, D}), u = get(p + "up_proj.weight", {I, D});
      Tensor d = get(p + "down_proj.weight", {D, I});
      if (e == 0) {
        ex.gate_up = rt.empty({E, 2 * I, D}, g.dtype, fmt::format("layer {} experts gate|up", idx));
        ex.down = rt.empty({E, D, I}, g.dtype, fmt::format("layer {} experts down", idx));
      }
      if (g.dtype != ex.gate_up.dtype || u.dtype != g.dtype || d.dtype != g.dtype) return false;
      rt.copy(g, ex.gate_up, g.bytes(), 0, e * 2 * g.bytes());
      rt.copy(u, ex.gate_up, u.bytes(), 0, e * 2 * g.bytes() + g.bytes());
      rt.copy(d, ex.down, d.bytes(), 0, e * d.bytes());
    }
    return true;
  };
  if (!load_experts(true)) load_experts(false);
  if (c.n_shared_experts > 0) {
    const int64_t Is = I * c.n_shared_experts;
    l.shared_gate_up = concat_rows(
        rt, w, {{"shared_experts.gate_proj.weight", Is}, {"shared_experts.up_proj.weight", Is}}, D, "shared gate|up");
    l.shared_down = w.load_matrix(rt, "shared_experts.down_proj.weight", {D, Is}, MatrixRole::lm_linear);
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
  l.o_w = w.load_matrix(rt, "self_attn.o_proj.weight", {D, H * hd}, MatrixRole::lm_linear);
  l.moe = c.is_moe_layer(idx);
  if (!l.moe) {
    const int64_t I = c.intermediate_size;
    l.mlp_gate_up = concat_rows(rt, w, {{"mlp.gate_proj.weight", I}, {"mlp.up_proj.weight", I}}, D, "dense gate|up");
    l.mlp_down = w.load_matrix(rt, "mlp.down_proj.weight", {D, I}, MatrixRole::lm_linear);
    return l;
  }
  load_lm_moe(rt, SubWeights(w, "mlp."), c, l, idx);
  return l;
}

LanguageModel load_lm(Runtime& rt, const WeightSource& w, const LmConfig& c) {
  LanguageModel lm;
  lm.cfg = c;
  lm.embed = w.load_matrix(rt, "model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    lm.layers.push_back(load_lm_layer(rt, SubWeights(w, fmt::format("model.layers.{}.", i)), c, i));
  lm.norm = w.load(rt, "model.norm.weight", {c.hidden_size});
  lm.lm_head = w.load_matrix(rt, "lm_head.weight", {c.vocab_size, c.hidden_size});
  rt.trim();  // the parts of the fused matrices, freed, are not needed again
  lm.rope = ops::RopeFreqs::make(rt, c.head_dim(), static_cast<float>(c.rope_theta));
  return lm;
}

DType kv_storage_from_string(const std::string& s) {
  if (s == "f16" || s == "fp16") return DType::f16;
  if (s == "bf16") return DType::bf16;
  if (s == "f32" || s == "fp32") return DType::f32;
  throw Error(fmt::format("unknown KV cache storage '{}': use f16, bf16 or f32", s));
}

uint64_t kv_cache_bytes(const LmConfig& c, int64_t tokens, DType dtype) {
  return static_cast<uint64_t>(c.num_hidden_layers) * 2 * static_cast<uint64_t>(tokens) * c.num_key_value_heads *
         c.head_dim() * dtype_size(dtype);
}

KvCache make_kv_cache(Runtime& rt, const LmConfig& c, int64_t capacity, DType dtype) {
  if (capacity < 1) throw Error(fmt::format("KV cache: capacity {} must be positive", capacity));
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16)
    throw Error(fmt::format("KV cache: {} storage is not one of f32, f16, bf16", dtype_name(dtype)));
  const uint64_t need = kv_cache_bytes(c, capacity, dtype);
  const uint64_t held = rt.memory().current, total = rt.device().global_mem;
  if (held + need > total)
    throw OutOfDeviceMemory(fmt::format(
        "the KV cache for {} tokens needs {:.1f} MiB of device memory, but {} has {:.1f} MiB left ({:.1f} MiB held of "
        "{:.1f} MiB); ask for a shorter context",
        capacity, need / 1048576.0, rt.device().label(), (total - std::min(held, total)) / 1048576.0, held / 1048576.0,
        total / 1048576.0));
  KvCache kv;
  kv.capacity = capacity;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    kv.kv.push_back(rt.empty({capacity, 2, c.num_key_value_heads, c.head_dim()}, dtype, fmt::format("KV cache {}", i)));
  return kv;
}

namespace {

// Keys and values of rows [first_row, first_row + n) of a layer's cache [cap, 2, Hkv, hd] as
// [1, Hkv, n, hd] views (k in slot 0 of each row, v in slot 1).
std::pair<ops::AttnView, ops::AttnView> kv_views(const Tensor& kv_cache, int64_t first_row, int64_t n) {
  const int64_t Hkv = kv_cache.dim(2), hd = kv_cache.dim(3), KV = Hkv * hd;
  ops::AttnView k;
  k.t = kv_cache;
  k.offset = static_cast<size_t>(first_row * 2 * KV);
  k.B = 1;
  k.H = Hkv;
  k.N = n;
  k.D = hd;
  k.sb = kv_cache.dim(0) * 2 * KV;
  k.sh = hd;
  k.sn = 2 * KV;
  ops::AttnView v = k;
  v.offset += static_cast<size_t>(KV);
  return {k, v};
}

// Residual additions not yet made: the output(s) of the sublayer before, added to x by the next
// norm in the same launch (x += a, or x += (a + b) for the routed and shared experts).
struct Pending {
  Tensor a, b;
};

// x += pending, then y = rms_norm(x) with weight w: one launch either way.
void add_norm(Runtime& rt, Tensor& x, Pending& p, const Tensor& w, Tensor& y, float eps) {
  if (p.a.defined())
    ops::add_rms_norm(rt, x, p.a, p.b.defined() ? &p.b : nullptr, w, y, eps);
  else
    ops::rms_norm(rt, x, w, y, eps);
  p = {};
}

// x += pending, without a norm (taps, the end of a layer called on its own).
void add_pending(Runtime& rt, Tensor& x, Pending& p) {
  if (p.b.defined()) ops::add(rt, p.a, p.b, p.a);
  if (p.a.defined()) ops::add(rt, x, p.a, x);
  p = {};
}

// The layer's shared experts as moe_decode takes them, in `sh`; nullptr when it has none.
const ops::MoeShared* layer_shared(const LmLayer& l, ops::MoeShared& sh) {
  sh = {l.shared_gate_up, l.shared_down};
  return l.shared_gate_up.defined() ? &sh : nullptr;
}

// Whether moe_parts runs a block of T tokens through ops::moe_decode.
bool moe_by_decode(const LmLayer& l, int64_t T, bool taps, bool batch) {
  ops::MoeShared sh;
  return !taps && (batch || T <= ops::kMoeDecodeMaxTokens) && ops::moe_decode_takes(l.experts, layer_shared(l, sh));
}

ops::MoeRouting moe_routing(const LmConfig& c) {
  return {static_cast<int>(c.num_experts_per_tok), c.norm_topk_prob, static_cast<float>(c.routed_scaling_factor)};
}

// The post-attention norm and the MoE block through ops::moe_decode (moe_by_decode holds), the
// norm done by the router's launch: x += pending, xn = rms_norm(x), y = the block of xn.
void norm_moe_decode(Runtime& rt, const LmConfig& c, const LmLayer& l, Tensor& x, Pending& p, Tensor& xn, Tensor& y) {
  ops::MoeShared sh;
  const ops::MoeInputNorm n{p.a, p.b, l.post_norm, static_cast<float>(c.rms_norm_eps), xn};
  ops::moe_decode(rt, x, l.router_w, l.experts, layer_shared(l, sh), moe_routing(c), y, &n);
  p = {};
}

// Routed experts into `routed`, shared experts (when the layer has them) into `shared`, or both
// summed into `routed` (shared left undefined) by ops::moe_decode: a decode step (batch: one token
// per sequence of a decode batch; else T <= kMoeDecodeMaxTokens) without taps, in three launches.
// The decode kernels compute each row as it would be alone, for any number of rows.
void moe_parts(Runtime& rt, const LmConfig& c, const LmLayer& l, const Tensor& xn, Tensor& routed, Tensor& shared,
               Taps* taps, const std::string& prefix, bool batch = false) {
  const int64_t T = xn.dim(0);
  const int64_t E = l.experts.E, K = c.num_experts_per_tok;
  ops::MoeShared sh;
  const ops::MoeShared* shp = layer_shared(l, sh);
  if (moe_by_decode(l, T, taps != nullptr, batch)) {
    ops::moe_decode(rt, xn, l.router_w, l.experts, shp, moe_routing(c), routed);
    return;
  }
  const LinearPath lp = batch ? LinearPath::gemv : LinearPath::automatic;
  Tensor logits = rt.empty({T, E}, DType::f32, "router logits");
  linear(rt, xn, l.router_w, nullptr, logits, lp);
  Tensor ids = rt.empty({T, K}, DType::i32, "topk ids"), w = rt.empty({T, K}, DType::f32, "topk weights");
  ops::moe_route(rt, logits, static_cast<int>(K), c.norm_topk_prob, static_cast<float>(c.routed_scaling_factor), ids,
                 w);
  if (taps) {
    (*taps)[prefix + "topk_ids"] = ids;
    (*taps)[prefix + "topk_weights"] = w;
  }
  ops::moe_experts(rt, xn, l.experts, ids, w, routed, batch ? ops::MoePath::decode : ops::MoePath::automatic);
  if (shp) {
    shared = rt.empty(xn.shape, DType::f32, "shared experts");
    swiglu_mlp(rt, xn, l.shared_gate_up, l.shared_down, shared, lp);
  }
}

// One decoder layer. `pend` holds the previous layer's MLP output on entry (added to x with the
// input norm) and this layer's on return (not yet added to x).
void layer_impl(Runtime& rt, const LmConfig& c, const LmLayer& l, const ops::RopeFreqs& rope, Tensor& x,
                const Tensor& positions, Tensor& kv_cache, int64_t past, Pending& pend, Taps* taps,
                const std::string& prefix) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim();
  if (x.rank() != 2 || x.dim(1) != D)
    throw Error(fmt::format("decoder layer: x must be [T,{}], got {}", D, shape_str(x.shape)));
  const int64_t T = x.dim(0), Ntot = H + 2 * Hkv, Q = H * hd;
  if (positions.numel() != T || positions.dtype != DType::i32)
    throw Error(fmt::format("decoder layer: positions must be i32 [{}], got {}", T, shape_str(positions.shape)));
  if (kv_cache.rank() != 4 || kv_cache.dim(1) != 2 || kv_cache.dim(2) != Hkv || kv_cache.dim(3) != hd ||
      (kv_cache.dtype != DType::f32 && kv_cache.dtype != DType::f16 && kv_cache.dtype != DType::bf16))
    throw Error(fmt::format("decoder layer: the KV cache must be f32, f16 or bf16 [capacity,2,{},{}], got {} {}", Hkv,
                            hd, shape_str(kv_cache.shape), dtype_name(kv_cache.dtype)));
  const int64_t cap = kv_cache.dim(0);
  if (past < 0 || past + T > cap)
    throw Error(fmt::format("decoder layer: {} past + {} new tokens exceed the KV cache of {}", past, T, cap));
  const float eps = static_cast<float>(c.rms_norm_eps);

  Tensor xn = rt.empty(x.shape, DType::f32, "lm norm");
  add_norm(rt, x, pend, l.in_norm, xn, eps);
  Tensor qkv = rt.empty({T, Ntot * hd}, DType::f32, "lm qkv");
  linear(rt, xn, l.qkv_w, nullptr, qkv);
  qkv.shape = {1, T, Ntot, hd};
  // q rotated in place, k rotated and v copied into the cache: one launch.
  ops::rope_kv_append(rt, qkv, H, Hkv, positions, rope, kv_cache, past);
  ops::AttnView q = ops::AttnView::heads(qkv, 0, H);
  const auto [kc, vc] = kv_views(kv_cache, 0, past + T);  // [1, Hkv, past+T, hd]
  Tensor att = rt.empty({1, T, H, hd}, DType::f32, "lm attention");
  ops::SdpaParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.causal = true;
  ops::sdpa(rt, q, kc, vc, ops::AttnView::bnhd(att), p);
  Tensor o = rt.empty(x.shape, DType::f32, "lm o_proj");
  linear(rt, reshaped(att, {T, Q}), l.o_w, nullptr, o);
  pend.a = o;
  if (taps) {
    add_pending(rt, x, pend);
    (*taps)[prefix + "attn_residual"] = rt.clone(x, "tap attn_residual");
  }
  Tensor y = rt.empty(x.shape, DType::f32, "lm mlp");
  if (l.moe && moe_by_decode(l, T, taps != nullptr, false)) {
    norm_moe_decode(rt, c, l, x, pend, xn, y);
    pend.a = y;
    return;
  }
  add_norm(rt, x, pend, l.post_norm, xn, eps);
  if (!l.moe) {
    swiglu_mlp(rt, xn, l.mlp_gate_up, l.mlp_down, y);
    pend.a = y;
    return;
  }
  Tensor shared;
  moe_parts(rt, c, l, xn, y, shared, taps, prefix);
  pend.a = y;
  pend.b = shared;
}

// One layer for a decode batch (or one decode step: B = 1): x [B, hidden], one new token per
// sequence at positions[b], sequence b's cache rows starting at batch.first_row[b] (see
// lm_decode_batch). The same kernels, in the same order per row, as layer_impl with T = 1, except
// that rope_kv_append is done by the attention's launch for all sequences (plan: their rows, key
// counts and splits, the same for every layer of the step). gemm (Tuning::batch_gemm_rows): the
// products run through the GEMM paths instead (as a prompt of B tokens would).
void layer_decode_batch(Runtime& rt, const LmConfig& c, const LmLayer& l, const ops::RopeFreqs& rope, Tensor& x,
                        const Tensor& positions, Tensor& kv_cache, const ops::SdpaDecodeBatch& plan, bool gemm,
                        Pending& pend) {
  const int64_t B = x.dim(0), H = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim();
  const int64_t Ntot = H + 2 * Hkv, Q = H * hd;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const LinearPath lp = gemm ? LinearPath::automatic : LinearPath::gemv;

  Tensor xn = rt.empty(x.shape, DType::f32, "lm norm");
  add_norm(rt, x, pend, l.in_norm, xn, eps);
  Tensor qkv = rt.empty({B, Ntot * hd}, DType::f32, "lm qkv");
  linear(rt, xn, l.qkv_w, nullptr, qkv, lp);
  Tensor att = rt.empty({B, H * hd}, DType::f32, "lm attention");
  // All sequences at once, each split over its keys as layer_impl splits it alone, q and the new
  // key rotated and the new key and value cached in the same launch (sdpa.h DecodeAppend).
  const ops::DecodeAppend append{positions, rope.inv_freq};
  ops::sdpa_decode_batch(rt, qkv, Ntot * hd, kv_cache, plan, att, Q, 1.0f / std::sqrt(static_cast<float>(hd)), &append);
  Tensor o = rt.empty(x.shape, DType::f32, "lm o_proj");
  linear(rt, att, l.o_w, nullptr, o, lp);
  pend.a = o;
  Tensor y = rt.empty(x.shape, DType::f32, "lm mlp");
  if (l.moe && !gemm && moe_by_decode(l, B, false, true)) {
    norm_moe_decode(rt, c, l, x, pend, xn, y);
    pend.a = y;
    return;
  }
  add_norm(rt, x, pend, l.post_norm, xn, eps);
  if (!l.moe) {
    swiglu_mlp(rt, xn, l.mlp_gate_up, l.mlp_down, y, lp);
    pend.a = y;
    return;
  }
  Tensor shared;
  moe_parts(rt, c, l, xn, y, shared, nullptr, {}, /*batch=*/!gemm);
  pend.a = y;
  pend.b = shared;
}

}  // namespace

Tensor lm_decode_batch(Runtime& rt, const LanguageModel& lm, Tensor x, std::vector<Tensor>& caches,
                       const DecodeBatch& batch) {
  const LmConfig& c = lm.cfg;
  const int64_t B = x.dim(0), D = c.hidden_size;
  if (x.rank() != 2 || x.dim(1) != D || x.dtype != DType::f32)
    throw Error(fmt::format("decode batch: x must be f32 [B,{}], got {}", D, shape_str(x.shape)));
  if (static_cast<int64_t>(batch.first_row.size()) != B || static_cast<int64_t>(batch.length.size()) != B)
    throw Error(fmt::format("decode batch: {} rows of x but {} sequences", B, batch.first_row.size()));
  if (caches.size() != lm.layers.size())
    throw Error(fmt::format("decode batch: {} caches for {} layers", caches.size(), lm.layers.size()));
  const int64_t cap = caches.front().dim(0);
  std::vector<int32_t> pos(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t row = batch.first_row[b] + batch.length[b];  // the new token's
    if (batch.first_row[b] < 0 || batch.length[b] < 0 || row >= cap || row > INT32_MAX)
      throw Error(fmt::format("decode batch: sequence {} (cache rows from {}, {} cached) outside the cache of {} rows",
                              b, batch.first_row[b], batch.length[b], cap));
    pos[b] = static_cast<int32_t>(batch.length[b]);
  }
  Tensor positions = rt.upload(pos.data(), {B}, DType::i32, "positions");
  std::vector<int64_t> n_keys(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) n_keys[b] = batch.length[b] + 1;
  const ops::SdpaDecodeBatch plan =
      ops::sdpa_decode_batch_plan(rt, c.num_attention_heads, c.head_dim(), batch.first_row, n_keys);
  const int gemm_from = rt.tuning().batch_gemm_for(rt.device().is_gpu);  // GEMM paths from this many rows
  const bool gemm = gemm_from > 0 && B >= gemm_from;
  Pending pend;
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    layer_decode_batch(rt, c, lm.layers[i], lm.rope, x, positions, caches[i], plan, gemm, pend);
    rt.flush();
  }
  Tensor hn = rt.empty(x.shape, DType::f32, "final norm");
  add_norm(rt, x, pend, lm.norm, hn, static_cast<float>(c.rms_norm_eps));
  Tensor logits = rt.empty({B, c.vocab_size}, DType::f32, "logits");
  linear(rt, hn, lm.lm_head, nullptr, logits, gemm ? LinearPath::automatic : LinearPath::gemv);
  return logits;
}

void lm_moe_forward(Runtime& rt, const LmConfig& c, const LmLayer& l, const Tensor& xn, Tensor& o, Taps* taps,
                    const std::string& prefix) {
  Tensor shared;
  moe_parts(rt, c, l, xn, o, shared, taps, prefix);
  if (shared.defined()) ops::add(rt, o, shared, o);
}

void lm_layer_forward(Runtime& rt, const LmConfig& c, const LmLayer& l, const ops::RopeFreqs& rope, Tensor& x,
                      const Tensor& positions, Tensor& kv_cache, int64_t past, Taps* taps, const std::string& prefix) {
  Pending pend;
  layer_impl(rt, c, l, rope, x, positions, kv_cache, past, pend, taps, prefix);
  add_pending(rt, x, pend);
}

Tensor lm_forward(Runtime& rt, const LanguageModel& lm, Tensor x, KvCache& cache, bool last_only, Taps* taps) {
  const LmConfig& c = lm.cfg;
  const int64_t T = x.dim(0), D = c.hidden_size;
  if (cache.length + T > cache.capacity)
    throw Error(fmt::format("language model: {} cached + {} new tokens exceed the context of {} tokens", cache.length,
                            T, cache.capacity));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) pos[i] = static_cast<int32_t>(cache.length + i);
  Tensor positions = rt.upload(pos.data(), {T}, DType::i32, "positions");
  // One decode step without taps: the batched decoder's layer with one sequence (the same kernels
  // as layer_impl's, the attention prologue in the attention's launch).
  const bool step = T == 1 && !taps;
  ops::SdpaDecodeBatch plan;
  if (step) plan = ops::sdpa_decode_batch_plan(rt, c.num_attention_heads, c.head_dim(), {0}, {cache.length + 1});
  Pending pend;
  for (size_t i = 0; i < lm.layers.size(); ++i) {
    std::string p = fmt::format("layers.{}", i);
    if (step)
      layer_decode_batch(rt, c, lm.layers[i], lm.rope, x, positions, cache.kv[i], plan, false, pend);
    else
      layer_impl(rt, c, lm.layers[i], lm.rope, x, positions, cache.kv[i], cache.length, pend, taps, p + ".");
    if (taps) {
      add_pending(rt, x, pend);
      (*taps)[p] = rt.clone(x, "tap " + p);
    }
    rt.flush();  // let the device start on this layer while the host enqueues the next
  }
  cache.length += T;
  const float eps = static_cast<float>(c.rms_norm_eps);
  Tensor hn;
  if (last_only && T > 1) {
    add_pending(rt, x, pend);
    Tensor h = rt.empty({1, D}, DType::f32, "last hidden");
    rt.copy(x, h, static_cast<size_t>(D) * 4, static_cast<size_t>((T - 1) * D) * 4, 0);
    hn = rt.empty(h.shape, DType::f32, "final norm");
    ops::rms_norm(rt, h, lm.norm, hn, eps);
  } else {
    hn = rt.empty(x.shape, DType::f32, "final norm");
    add_norm(rt, x, pend, lm.norm, hn, eps);
  }
  if (taps) (*taps)["norm"] = hn;
  Tensor logits = rt.empty({hn.dim(0), c.vocab_size}, DType::f32, "logits");
  linear(rt, hn, lm.lm_head, nullptr, logits);
  return logits;
}

}  // namespace dsocr

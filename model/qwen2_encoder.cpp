#include "model/qwen2_encoder.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/ops/elementwise.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/sdpa.h"

namespace dsocr {
namespace {

// [rows_0 + rows_1 + ..., cols...]: tensors of one source stacked along their first dimension.
// Matrices (matrix = true) stay in their storage dtype when all parts share one (bf16 from the
// checkpoint), else are widened to fp32; vectors (biases) are always fp32.
Tensor concat_rows(Runtime& rt, const WeightSource& w, const std::vector<std::pair<std::string, int64_t>>& parts,
                   int64_t cols, bool matrix, const std::string& what) {
  auto shape = [&](int64_t r) { return matrix ? Shape{r, cols} : Shape{r}; };
  int64_t rows = 0;
  std::vector<Tensor> loaded;
  bool same = true;
  for (auto& [name, r] : parts) {
    rows += r;
    loaded.push_back(matrix ? w.load_matrix(rt, name, shape(r)) : w.load(rt, name, shape(r)));
    same = same && loaded.back().dtype == loaded.front().dtype;
  }
  for (size_t i = 0; !same && i < parts.size(); ++i) loaded[i] = w.load(rt, parts[i].first, shape(parts[i].second));
  Tensor out = rt.empty(shape(rows), loaded.front().dtype, what);
  size_t off = 0;
  for (const Tensor& part : loaded) {
    rt.copy(part, out, part.bytes(), 0, off);
    off += part.bytes();
  }
  return out;
}

void check_config(const Qwen2EncoderConfig& c) {
  if (c.layers < 1 || c.hidden < 1 || c.heads < 1 || c.kv_heads < 1 || c.intermediate < 1 || c.tile_queries < 1 ||
      c.global_queries < 1)
    throw Error(
        fmt::format("qwen2 encoder config: layers {}, hidden {}, heads {}, kv_heads {}, intermediate {}, "
                    "queries {}/{} must all be positive",
                    c.layers, c.hidden, c.heads, c.kv_heads, c.intermediate, c.tile_queries, c.global_queries));
  if (c.hidden % c.heads != 0 || c.head_dim() % 2 != 0 || c.heads % c.kv_heads != 0)
    throw Error(
        fmt::format("qwen2 encoder config: {} heads must divide hidden {} into an even head dim, and {} kv "
                    "heads must divide the heads",
                    c.heads, c.hidden, c.kv_heads));
  if (c.tile_queries == c.global_queries)
    throw Error(
        fmt::format("qwen2 encoder config: tile_queries and global_queries are both {}; the token count of a "
                    "view picks the query table, so they must differ",
                    c.tile_queries));
}

Qwen2EncoderLayer load_layer(Runtime& rt, const WeightSource& w, const Qwen2EncoderConfig& c, int64_t idx) {
  const int64_t D = c.hidden, Q = c.heads * c.head_dim(), KV = c.kv_heads * c.head_dim(), I = c.intermediate;
  Qwen2EncoderLayer l;
  l.in_norm = w.load(rt, "input_layernorm.weight", {D});
  l.post_norm = w.load(rt, "post_attention_layernorm.weight", {D});
  l.qkv_w = concat_rows(
      rt, w, {{"self_attn.q_proj.weight", Q}, {"self_attn.k_proj.weight", KV}, {"self_attn.v_proj.weight", KV}}, D,
      true, fmt::format("qwen2 encoder layer {} qkv", idx));
  l.qkv_b =
      concat_rows(rt, w, {{"self_attn.q_proj.bias", Q}, {"self_attn.k_proj.bias", KV}, {"self_attn.v_proj.bias", KV}},
                  D, false, fmt::format("qwen2 encoder layer {} qkv bias", idx));
  l.o_w = w.load_matrix(rt, "self_attn.o_proj.weight", {D, Q});
  l.gate_up = concat_rows(rt, w, {{"mlp.gate_proj.weight", I}, {"mlp.up_proj.weight", I}}, D, true,
                          fmt::format("qwen2 encoder layer {} gate|up", idx));
  l.down = w.load_matrix(rt, "mlp.down_proj.weight", {D, I});
  return l;
}

}  // namespace

Qwen2Encoder load_qwen2_encoder(Runtime& rt, const WeightSource& w, const Qwen2EncoderConfig& cfg) {
  check_config(cfg);
  Qwen2Encoder e;
  e.cfg = cfg;
  for (int64_t i = 0; i < cfg.layers; ++i)
    e.layers.push_back(load_layer(rt, SubWeights(w, fmt::format("model.model.layers.{}.", i)), cfg, i));
  e.norm = w.load(rt, "model.model.norm.weight", {cfg.hidden});
  // Read by copies into the token rows only: kept fp32.
  e.query_768 = w.load(rt, "query_768.weight", {cfg.tile_queries, cfg.hidden});
  e.query_1024 = w.load(rt, "query_1024.weight", {cfg.global_queries, cfg.hidden});
  rt.trim();  // the parts of the fused matrices, freed, are not needed again
  e.rope = ops::RopeFreqs::make(rt, cfg.head_dim(), static_cast<float>(cfg.rope_theta));
  for (int64_t N : {cfg.tile_queries, cfg.global_queries}) {
    std::vector<int32_t> pos(static_cast<size_t>(2 * N));
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
    e.positions[N] = rt.upload(pos.data(), {2 * N}, DType::i32, "qwen2 encoder positions");
  }
  return e;
}

const Tensor& qwen2_queries(const Qwen2Encoder& enc, int64_t N) {
  if (N == enc.cfg.tile_queries) return enc.query_768;
  if (N == enc.cfg.global_queries) return enc.query_1024;
  throw Error(
      fmt::format("qwen2 encoder: a view of {} image tokens has no learned queries; query_768 serves {} "
                  "(768-pixel tiles) and query_1024 serves {} (the 1024 global view)",
                  N, enc.cfg.tile_queries, enc.cfg.global_queries));
}

void qwen2_encoder_layer_forward(Runtime& rt, const Qwen2EncoderConfig& c, const Qwen2EncoderLayer& l,
                                 const ops::RopeFreqs& rope, Tensor& x, const Tensor& positions, int64_t N) {
  const int64_t D = c.hidden, H = c.heads, Hkv = c.kv_heads, hd = c.head_dim(), I = c.intermediate;
  if (x.rank() != 3 || x.dim(2) != D || x.dtype != DType::f32 || N < 1 || x.dim(1) != 2 * N)
    throw Error(fmt::format("qwen2 encoder layer: x must be f32 [B,2N,{}] with N = {} image tokens, got {} {}", D, N,
                            dtype_name(x.dtype), shape_str(x.shape)));
  const int64_t B = x.dim(0), T = x.dim(1), Htot = H + 2 * Hkv;
  const float eps = static_cast<float>(c.rms_eps);

  Tensor xn = rt.empty(x.shape, DType::f32, "qwen2 encoder norm");  // [B,T,D]
  ops::rms_norm(rt, x, l.in_norm, xn, eps);
  Tensor qkv = rt.empty({B, T, Htot, hd}, DType::f32, "qwen2 encoder qkv");  // q heads | k heads | v heads
  Tensor qkv_flat = reshaped(qkv, {B, T, Htot * hd});
  linear(rt, xn, l.qkv_w, &l.qkv_b, qkv_flat);
  // q and k heads are adjacent in the fused projection: one rotation, in place, covers both.
  ops::AttnView qk = ops::AttnView::heads(qkv, 0, H + Hkv);
  ops::rope(rt, qk, positions, rope, qk);
  // GQA by the kernel itself: query head h reads kv head h / (H/Hkv), K and V are not expanded.
  Tensor att = rt.empty({B, T, H, hd}, DType::f32, "qwen2 encoder attention");
  ops::SdpaParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.causal = true;
  p.causal_prefix = N;  // the N image tokens: seen by every row; the queries after them causally
  ops::sdpa(rt, ops::AttnView::heads(qkv, 0, H), ops::AttnView::heads(qkv, H, Hkv),
            ops::AttnView::heads(qkv, H + Hkv, Hkv), ops::AttnView::bnhd(att), p);
  Tensor o = rt.empty(x.shape, DType::f32, "qwen2 encoder o_proj");  // [B,T,D]
  linear(rt, reshaped(att, {B, T, H * hd}), l.o_w, nullptr, o);
  ops::add_rms_norm(rt, x, o, nullptr, l.post_norm, xn, eps);  // x += o; xn = rms_norm(x)
  Tensor gu = rt.empty({B * T, 2 * I}, DType::f32, "qwen2 encoder gate|up");
  linear(rt, reshaped(xn, {B * T, D}), l.gate_up, nullptr, gu);
  Tensor y = rt.empty({B * T, D}, DType::f32, "qwen2 encoder mlp");
  linear_swiglu(rt, gu, l.down, y);  // down(silu(gate) * up)
  ops::add(rt, x, y, x);
}

Tensor qwen2_encoder_forward(Runtime& rt, const Qwen2Encoder& enc, const Tensor& features,
                             std::map<std::string, Tensor>* taps) {
  const Qwen2EncoderConfig& c = enc.cfg;
  const int64_t D = c.hidden;
  if (features.rank() != 3 || features.dim(2) != D || features.dtype != DType::f32 || features.dim(0) < 1)
    throw Error(fmt::format("qwen2 encoder: features must be f32 [B,N,{}] (SAM's net_3 map flattened), got {} {}", D,
                            dtype_name(features.dtype), shape_str(features.shape)));
  const int64_t B = features.dim(0), N = features.dim(1);
  const Tensor& queries = qwen2_queries(enc, N);  // [N, D]
  const Tensor& positions = enc.positions.at(N);  // [2N] 0..2N-1

  // x [B, 2N, D]: each view's image tokens, then the same N queries.
  Tensor x = rt.empty({B, 2 * N, D}, DType::f32, "qwen2 encoder tokens");
  const size_t block = static_cast<size_t>(N * D) * sizeof(float);
  for (int64_t b = 0; b < B; ++b) {
    rt.copy(features, x, block, b * block, 2 * b * block);
    rt.copy(queries, x, block, 0, (2 * b + 1) * block);
  }
  auto tap = [&](const std::string& name) {
    if (taps) (*taps)[name] = rt.clone(x, "tap " + name);
  };
  tap("inputs");
  for (size_t i = 0; i < enc.layers.size(); ++i) {
    qwen2_encoder_layer_forward(rt, c, enc.layers[i], enc.rope, x, positions, N);
    tap(fmt::format("layers.{}", i));
    rt.flush();  // let the device start on this layer while the host enqueues the next
  }
  // The query rows of each view [B, N, D] (rows N..2N-1), then the final norm (per row, so
  // normalising only the kept rows equals the reference's norm-then-slice).
  Tensor kept = rt.empty({B, N, D}, DType::f32, "qwen2 encoder query rows");
  ops::copy_rows(rt, x, N * D, 2 * N * D, kept, 0, N * D, B, N * D);
  Tensor out = rt.empty({B, N, D}, DType::f32, "qwen2 encoder output");
  ops::rms_norm(rt, kept, enc.norm, out, static_cast<float>(c.rms_eps));
  if (taps) (*taps)["norm"] = out;
  return out;
}

}  // namespace dsocr

// Parity ops of DeepSeek-OCR-2's Qwen2 encoder (docs/golden-contract.md §7): qwen2_encoder_layer and
// qwen2_encoder, run through model/qwen2_encoder.h. The structure the weights do not reveal (heads,
// RoPE theta, eps) comes from root attributes with the official values as defaults; everything else
// (width, KV heads, FFN width, layer count, query counts) from the weights' shapes, checked here so
// that a malformed case is reported as unrunnable (exit status 2) before the model loader sees it.
#include <fmt/format.h>

#include "model/qwen2_encoder.h"
#include "parity/golden_weights.h"
#include "parity/parity.h"

namespace dsocr {
namespace {

const char* kLayerPrefix = "model.model.layers.";

// heads, kv heads (k_proj rows / head size), FFN width, theta and eps of a case whose layer
// weights are named under `p`; hidden is the width the inputs give.
Qwen2EncoderConfig qwen2_config(const GoldenCase& c, const std::string& p, int64_t hidden) {
  Qwen2EncoderConfig k;
  k.hidden = hidden;
  k.heads = c.attr_int("num_heads", 14);
  if (k.heads < 1 || hidden < 1 || hidden % k.heads || (hidden / k.heads) % 2)
    throw GoldenError(fmt::format("{}: num_heads {} must divide the width {} into an even head size", c.path,
                                  k.heads, hidden));
  const int64_t hd = k.head_dim();
  const auto& kp = c.weight(p + "self_attn.k_proj.weight");
  expect_shape(c, "weights/" + p + "self_attn.k_proj.weight", kp, {-1, hidden});
  k.kv_heads = kp.shape[0] / hd;
  if (kp.shape[0] % hd || k.kv_heads < 1 || k.heads % k.kv_heads)
    throw GoldenError(fmt::format("{}: /weights/{}self_attn.k_proj.weight has {} rows: expected a multiple of the "
                                  "head size {} giving a key/value head count that divides num_heads {}",
                                  c.path, p, kp.shape[0], hd, k.heads));
  const auto& gate = c.weight(p + "mlp.gate_proj.weight");
  expect_shape(c, "weights/" + p + "mlp.gate_proj.weight", gate, {-1, hidden});
  k.intermediate = gate.shape[0];
  if (k.intermediate < 1) throw GoldenError(fmt::format("{}: /weights/{}mlp.gate_proj.weight is empty", c.path, p));
  k.rope_theta = c.attr_float("rope_theta", 1e6);
  k.rms_eps = c.attr_float("eps", 1e-6);
  return k;
}

// A qwen2_encoder_layer case's weights (named relative to the layer) seen as a one-layer encoder:
// model.model.layers.0.* are the case's datasets; the final norm and the two query tables, which
// a layer case has no use for, are stand-ins (ones / zeros), never read by the layer.
class LayerAsEncoder : public WeightSource {
 public:
  explicit LayerAsEncoder(const GoldenCase& c) : w_(c) {}
  bool has(const std::string& name) const override { return stand_in(name) || w_.has(layer_name(name)); }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    if (!stand_in(name)) return w_.load(rt, layer_name(name), expected);
    std::vector<float> v(static_cast<size_t>(shape_numel(expected)), name == "model.model.norm.weight" ? 1.f : 0.f);
    return rt.upload(v.data(), expected, DType::f32, "stand-in " + name);
  }
  std::string describe(const std::string& name) const override { return w_.describe(layer_name(name)); }

 private:
  static bool stand_in(const std::string& n) {
    return n == "model.model.norm.weight" || n == "query_768.weight" || n == "query_1024.weight";
  }
  static std::string layer_name(const std::string& n) {
    const std::string p = std::string(kLayerPrefix) + "0.";
    return n.rfind(p, 0) == 0 ? n.substr(p.size()) : n;
  }
  GoldenWeights w_;
};

ParityOutputs op_qwen2_encoder_layer(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1});
  const int64_t T = x.shape[1];
  if (x.shape[0] < 1 || T < 2 || x.kind != HostArray::Kind::f32)
    throw GoldenError(fmt::format("{}: inputs/x {} must be float [B,2N,D] with B >= 1, N >= 1", c.path,
                                  shape_str(x.shape)));
  const auto& pos = c.input("positions");
  expect_shape(c, "inputs/positions", pos, {T});
  if (pos.kind != HostArray::Kind::i64)
    throw GoldenError(fmt::format("{}: inputs/positions must be integers ({} stored)", c.path, pos.stored_type));
  const int64_t P = c.attr_int("causal_prefix", T / 2);
  if (P < 0 || P > T) throw GoldenError(fmt::format("{}: attrs/causal_prefix {} must be in 0..{}", c.path, P, T));
  if (2 * P != T)
    throw NotImplemented(fmt::format("{}: causal_prefix {} with {} tokens: this runner runs the encoder's layer, "
                                     "whose prefix is half the sequence (N image tokens then N queries)",
                                     c.path, P, T));
  Qwen2EncoderConfig cfg = qwen2_config(c, "", x.shape[2]);
  cfg.layers = 1;
  cfg.tile_queries = 1;  // the stand-in query tables: never used by a single layer
  cfg.global_queries = 2;
  Qwen2Encoder enc = load_qwen2_encoder(rt, LayerAsEncoder(c), cfg);
  Tensor xt = to_device(rt, x, "x"), pt = to_device(rt, pos, "positions");
  qwen2_encoder_layer_forward(rt, cfg, enc.layers[0], enc.rope, xt, pt, P);
  return {{"y", from_device_f32(rt, xt)}};
}

// [B,D,h,w] -> [B,h*w,D]: the SAM map's tokens in row-major order, as the model flattens it.
HostArray tokens_of(const HostArray& m) {
  const int64_t B = m.shape[0], D = m.shape[1], N = m.shape[2] * m.shape[3];
  HostArray t;
  t.shape = {B, N, D};
  t.f.resize(m.f.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t n = 0; n < N; ++n) t.f[static_cast<size_t>((b * N + n) * D + d)] = m.f[(b * D + d) * N + n];
  return t;
}

ParityOutputs op_qwen2_encoder(Runtime& rt, const GoldenCase& c) {
  const auto& feats = c.input("sam_features");
  expect_shape(c, "inputs/sam_features", feats, {-1, -1, -1, -1});
  if (feats.kind != HostArray::Kind::f32 || feats.numel() == 0)
    throw GoldenError(fmt::format("{}: inputs/sam_features {} must be non-empty float [B,D,h,w]", c.path,
                                  shape_str(feats.shape)));
  const int64_t D = feats.shape[1], N = feats.shape[2] * feats.shape[3];
  const std::string l0 = std::string(kLayerPrefix) + "0.";
  Qwen2EncoderConfig cfg = qwen2_config(c, l0, D);
  expect_shape(c, "weights/model.model.norm.weight", c.weight("model.model.norm.weight"), {D});
  const auto& q768 = c.weight("query_768.weight");
  const auto& q1024 = c.weight("query_1024.weight");
  expect_shape(c, "weights/query_768.weight", q768, {-1, D});
  expect_shape(c, "weights/query_1024.weight", q1024, {-1, D});
  cfg.tile_queries = q768.shape[0];
  cfg.global_queries = q1024.shape[0];
  if (cfg.tile_queries < 1 || cfg.global_queries < 1 || cfg.tile_queries == cfg.global_queries)
    throw GoldenError(fmt::format("{}: query_768 ({} rows) and query_1024 ({} rows) must be non-empty and differ in "
                                  "length (the token count picks the table)",
                                  c.path, cfg.tile_queries, cfg.global_queries));
  if (N != cfg.tile_queries && N != cfg.global_queries)
    throw GoldenError(fmt::format("{}: inputs/sam_features {} has N = h*w = {} tokens; the learned queries serve "
                                  "only {} (query_768) or {} (query_1024)",
                                  c.path, shape_str(feats.shape), N, cfg.tile_queries, cfg.global_queries));
  cfg.layers = 0;  // layer 0's k_proj is there (qwen2_config): at least one layer
  while (c.weights.count(fmt::format("{}{}.self_attn.k_proj.weight", kLayerPrefix, cfg.layers))) ++cfg.layers;
  Qwen2Encoder enc = load_qwen2_encoder(rt, GoldenWeights(c), cfg);
  Tensor x = to_device(rt, tokens_of(feats), "sam_features");
  std::map<std::string, Tensor> taps;
  Tensor y = qwen2_encoder_forward(rt, enc, x, &taps);
  ParityOutputs out{{"y", from_device_f32(rt, y)}};
  for (auto& [name, t] : taps)  // only the taps the case stores ("layers.N")
    if (c.taps.count(name)) out["taps/" + name] = from_device_f32(rt, t);
  return out;
}

}  // namespace

void register_qwen2_parity_ops(std::map<std::string, ParityFn>& table) {
  table["qwen2_encoder_layer"] = op_qwen2_encoder_layer;
  table["qwen2_encoder"] = op_qwen2_encoder;
}

}  // namespace dsocr

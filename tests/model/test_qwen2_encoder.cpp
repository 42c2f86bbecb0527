// model/qwen2_encoder (DeepSeek-OCR-2's Qwen2 "causal flow" encoder) at reduced sizes with random
// weights, against a plain double-precision implementation written here: dense mask built
// explicitly, GQA by head index, RoPE from its formula. Also: the image rows of every layer are
// untouched by the query rows (exactly), a view with no query table is refused, and the weights are
// asked for by the official checkpoint names.
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "harness/harness.h"
#include "model/qwen2_encoder.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// Named host tensors as a WeightSource (the names a checkpoint would hold under model.qwen2_model.).
struct HostTensor {
  Shape shape;
  std::vector<float> v;
};
using HostWeights = std::map<std::string, HostTensor>;

class MapWeights : public WeightSource {
 public:
  explicit MapWeights(const HostWeights& w) : w_(w) {}
  bool has(const std::string& name) const override { return w_.count(name) != 0; }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override {
    auto it = w_.find(name);
    if (it == w_.end()) throw Error("test weights: no tensor " + name);
    if (it->second.shape != expected)
      throw Error(
          fmt::format("test weights: {} is {}, asked for {}", name, shape_str(it->second.shape), shape_str(expected)));
    return rt.upload(it->second.v, expected);
  }
  std::string describe(const std::string& name) const override { return "test tensor " + name; }

 private:
  const HostWeights& w_;
};

Qwen2EncoderConfig tiny_config() {
  Qwen2EncoderConfig c;
  c.layers = 2;
  c.hidden = 64;
  c.heads = 4;
  c.kv_heads = 2;
  c.intermediate = 96;
  c.tile_queries = 7;     // stands for 144 (768-pixel tiles)
  c.global_queries = 13;  // stands for 256 (the 1024 global view)
  return c;
}

// Linear weights ~ U(-1,1)/sqrt(in) so activations stay O(1) through the layers; norms ~ 1 ± 0.2.
HostWeights random_weights(const Qwen2EncoderConfig& c, uint32_t seed) {
  const int64_t D = c.hidden, Q = c.heads * c.head_dim(), KV = c.kv_heads * c.head_dim(), I = c.intermediate;
  HostWeights w;
  auto add = [&](const std::string& name, const Shape& s, float lo, float hi) {
    w[name] = {s, random_floats(static_cast<size_t>(shape_numel(s)), seed++, lo, hi)};
  };
  auto mat = [&](const std::string& name, int64_t out, int64_t in) {
    const float a = 1.0f / std::sqrt(static_cast<float>(in));
    add(name, {out, in}, -a, a);
  };
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = fmt::format("model.model.layers.{}.", i);
    add(p + "input_layernorm.weight", {D}, 0.8f, 1.2f);
    add(p + "post_attention_layernorm.weight", {D}, 0.8f, 1.2f);
    mat(p + "self_attn.q_proj.weight", Q, D);
    mat(p + "self_attn.k_proj.weight", KV, D);
    mat(p + "self_attn.v_proj.weight", KV, D);
    add(p + "self_attn.q_proj.bias", {Q}, -0.2f, 0.2f);
    add(p + "self_attn.k_proj.bias", {KV}, -0.2f, 0.2f);
    add(p + "self_attn.v_proj.bias", {KV}, -0.2f, 0.2f);
    mat(p + "self_attn.o_proj.weight", D, Q);
    mat(p + "mlp.gate_proj.weight", I, D);
    mat(p + "mlp.up_proj.weight", I, D);
    mat(p + "mlp.down_proj.weight", D, I);
  }
  add("model.model.norm.weight", {D}, 0.8f, 1.2f);
  add("query_768.weight", {c.tile_queries, D}, -1.f, 1.f);
  add("query_1024.weight", {c.global_queries, D}, -1.f, 1.f);
  return w;
}

// ---- the double-precision reference ------------------------------------------------------------

using Vec = std::vector<double>;

// y [rows, out] = x [rows, in] W[out, in]^T (+ b).
Vec dlinear(const Vec& x, const HostTensor& w, const HostTensor* b, int64_t rows) {
  const int64_t out = w.shape[0], in = w.shape[1];
  Vec y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? b->v[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += x[r * in + i] * w.v[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

// x [rows, C] -> x * rsqrt(mean(x^2) + eps) * w.
Vec drms(const Vec& x, const HostTensor& w, int64_t rows, double eps) {
  const int64_t C = w.shape[0];
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += x[r * C + i] * x[r * C + i];
    const double inv = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t i = 0; i < C; ++i) y[r * C + i] = x[r * C + i] * inv * w.v[i];
  }
  return y;
}

// The mask of model-spec §1.3, written out: allowed[i][j] for 2N tokens (N image, then N queries).
std::vector<std::vector<bool>> dense_mask(int64_t N) {
  std::vector<std::vector<bool>> m(2 * N, std::vector<bool>(2 * N, false));
  for (int64_t i = 0; i < 2 * N; ++i)
    for (int64_t j = 0; j < 2 * N; ++j) {
      const bool qi = i >= N, qj = j >= N;
      if (!qi && !qj) m[i][j] = true;  // image -> image
      if (!qi && qj) m[i][j] = false;  // image -> query
      if (qi && !qj) m[i][j] = true;   // query -> image
      if (qi && qj) m[i][j] = j <= i;  // query_i -> query_j, j <= i
    }
  return m;
}

// Half-rotation RoPE in place on one head vector v [hd] at position p.
void drope(double* v, int64_t hd, int64_t p, double theta) {
  const int64_t half = hd / 2;
  for (int64_t k = 0; k < half; ++k) {
    const double a = p * std::pow(theta, -2.0 * k / hd), c = std::cos(a), s = std::sin(a);
    const double x1 = v[k], x2 = v[k + half];
    v[k] = x1 * c - x2 * s;
    v[k + half] = x2 * c + x1 * s;
  }
}

// One layer on one view x [T = 2N, D], in place.
void ref_layer(const Qwen2EncoderConfig& c, const HostWeights& w, int64_t li, Vec& x, int64_t N) {
  const int64_t H = c.heads, Hkv = c.kv_heads, hd = c.head_dim(), I = c.intermediate, T = 2 * N;
  const std::string p = fmt::format("model.model.layers.{}.", li);
  auto W = [&](const std::string& n) -> const HostTensor& { return w.at(p + n); };
  Vec xn = drms(x, W("input_layernorm.weight"), T, c.rms_eps);
  Vec q = dlinear(xn, W("self_attn.q_proj.weight"), &W("self_attn.q_proj.bias"), T);  // [T, H*hd]
  Vec k = dlinear(xn, W("self_attn.k_proj.weight"), &W("self_attn.k_proj.bias"), T);  // [T, Hkv*hd]
  Vec v = dlinear(xn, W("self_attn.v_proj.weight"), &W("self_attn.v_proj.bias"), T);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) drope(&q[(t * H + h) * hd], hd, t, c.rope_theta);
    for (int64_t h = 0; h < Hkv; ++h) drope(&k[(t * Hkv + h) * hd], hd, t, c.rope_theta);
  }
  const auto mask = dense_mask(N);
  Vec att(static_cast<size_t>(T * H * hd), 0.0), s(T);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / Hkv);  // the kv head of query head h
    for (int64_t i = 0; i < T; ++i) {
      double m = -INFINITY, l = 0;
      for (int64_t j = 0; j < T; ++j) {
        if (!mask[i][j]) continue;
        double acc = 0;
        for (int64_t d = 0; d < hd; ++d) acc += q[(i * H + h) * hd + d] * k[(j * Hkv + g) * hd + d];
        s[j] = acc / std::sqrt(static_cast<double>(hd));
        m = std::max(m, s[j]);
      }
      for (int64_t j = 0; j < T; ++j) {
        if (!mask[i][j]) continue;
        const double e = std::exp(s[j] - m);
        l += e;
        for (int64_t d = 0; d < hd; ++d) att[(i * H + h) * hd + d] += e * v[(j * Hkv + g) * hd + d];
      }
      for (int64_t d = 0; d < hd; ++d) att[(i * H + h) * hd + d] /= l;
    }
  }
  Vec o = dlinear(att, W("self_attn.o_proj.weight"), nullptr, T);
  for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  xn = drms(x, W("post_attention_layernorm.weight"), T, c.rms_eps);
  Vec gate = dlinear(xn, W("mlp.gate_proj.weight"), nullptr, T), up = dlinear(xn, W("mlp.up_proj.weight"), nullptr, T);
  Vec act(static_cast<size_t>(T * I));
  for (size_t i = 0; i < act.size(); ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  Vec y = dlinear(act, W("mlp.down_proj.weight"), nullptr, T);
  for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

struct RefOut {
  std::vector<Vec> layers;  // after each layer: [B, 2N, D]
  Vec out;                  // [B, N, D]
};

// features [B, N, D]; the query table is picked by N as the official forward does.
RefOut ref_forward(const Qwen2EncoderConfig& c, const HostWeights& w, const std::vector<float>& features, int64_t B,
                   int64_t N) {
  const int64_t D = c.hidden;
  const HostTensor& qt = w.at(N == c.tile_queries ? "query_768.weight" : "query_1024.weight");
  RefOut r;
  r.layers.assign(c.layers, Vec(static_cast<size_t>(B * 2 * N * D)));
  r.out.resize(static_cast<size_t>(B * N * D));
  for (int64_t b = 0; b < B; ++b) {
    Vec x(static_cast<size_t>(2 * N * D));
    for (int64_t i = 0; i < N * D; ++i) {
      x[i] = features[b * N * D + i];
      x[N * D + i] = qt.v[i];
    }
    for (int64_t li = 0; li < c.layers; ++li) {
      ref_layer(c, w, li, x, N);
      std::copy(x.begin(), x.end(), r.layers[li].begin() + b * 2 * N * D);
    }
    Vec kept(x.begin() + N * D, x.end());
    Vec y = drms(kept, w.at("model.model.norm.weight"), N, c.rms_eps);
    std::copy(y.begin(), y.end(), r.out.begin() + b * N * D);
  }
  return r;
}

// ---- the cases ---------------------------------------------------------------------------------

// fp32 on the device vs double (the sdpa test's tolerance): the largest differences seen on PoCL and
// rusticl are 6e-7 (two layers at width 64) and 2.7e-6 (one layer at the real shape, values O(1)).
constexpr double kAtol = 1e-5, kRtol = 1e-4;

void check_against_reference(const Qwen2EncoderConfig& c, int64_t B, int64_t N, uint32_t seed) {
  Runtime& r = rt();
  const HostWeights hw = random_weights(c, seed);
  Qwen2Encoder enc = load_qwen2_encoder(r, MapWeights(hw), c);
  const std::vector<float> feats = random_floats(static_cast<size_t>(B * N * c.hidden), seed + 1000);
  std::map<std::string, Tensor> taps;
  Tensor out = qwen2_encoder_forward(r, enc, r.upload(feats, {B, N, c.hidden}), &taps);
  ASSERT_EQ(out.shape, (Shape{B, N, c.hidden}));
  const RefOut ref = ref_forward(c, hw, feats, B, N);
  for (int64_t li = 0; li < c.layers; ++li) {
    const std::string name = fmt::format("layers.{}", li);
    ASSERT_TRUE(taps.count(name)) << name;
    EXPECT_TRUE(all_close(r.read_f32(taps[name]), ref.layers[li], {B, 2 * N, c.hidden}, kAtol, kRtol)) << name;
  }
  EXPECT_TRUE(all_close(r.read_f32(out), ref.out, out.shape, kAtol, kRtol)) << "output";
  ASSERT_TRUE(taps.count("inputs") && taps.count("norm"));
  EXPECT_EQ(taps["inputs"].shape, (Shape{B, 2 * N, c.hidden}));
}

}  // namespace

TEST(qwen2_encoder, tiles_match_reference) { check_against_reference(tiny_config(), /*B=*/3, /*N=*/7, 11); }

TEST(qwen2_encoder, global_view_matches_reference) { check_against_reference(tiny_config(), /*B=*/1, /*N=*/13, 23); }

TEST(qwen2_encoder, real_shape_one_layer) {
  // The checkpoint's shape (896 wide, 14 heads over 2 kv heads of 64, SwiGLU 4864, a 768 tile's
  // 144 tokens and queries) for one layer, so the reference stays a few seconds.
  Qwen2EncoderConfig c;
  c.layers = 1;
  check_against_reference(c, /*B=*/1, /*N=*/144, 31);
}

TEST(qwen2_encoder, reference_mask_is_the_spec_mask) {
  // The reference's dense mask against M = [[1,0],[1,LowerTri]] (model-spec §1.3) at N = 3.
  const auto m = dense_mask(3);
  const char* want[6] = {"111000", "111000", "111000", "111100", "111110", "111111"};
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) EXPECT_EQ(m[i][j], want[i][j] == '1') << i << "," << j;
}

TEST(qwen2_encoder, image_rows_never_see_queries) {
  // Two encoders with the same layers and other query tables: after every layer the image rows
  // (0..N-1 of each view) are bit for bit the same, the query rows are not.
  Runtime& r = rt();
  const Qwen2EncoderConfig c = tiny_config();
  const int64_t B = 2, N = c.tile_queries, D = c.hidden;
  HostWeights hw = random_weights(c, 5);
  Qwen2Encoder a = load_qwen2_encoder(r, MapWeights(hw), c);
  hw["query_768.weight"].v = random_floats(static_cast<size_t>(N * D), 77, -2.f, 2.f);
  Qwen2Encoder b = load_qwen2_encoder(r, MapWeights(hw), c);
  const Tensor feats = r.upload(random_floats(static_cast<size_t>(B * N * D), 6), {B, N, D});
  std::map<std::string, Tensor> ta, tb;
  qwen2_encoder_forward(r, a, feats, &ta);
  qwen2_encoder_forward(r, b, feats, &tb);
  for (int64_t li = 0; li < c.layers; ++li) {
    const std::string name = fmt::format("layers.{}", li);
    const std::vector<float> xa = r.read_f32(ta[name]), xb = r.read_f32(tb[name]);
    int64_t image_diff = 0, query_diff = 0;
    for (int64_t v = 0; v < B; ++v)
      for (int64_t t = 0; t < 2 * N; ++t)
        for (int64_t d = 0; d < D; ++d) {
          const size_t i = static_cast<size_t>((v * 2 * N + t) * D + d);
          (t < N ? image_diff : query_diff) += xa[i] != xb[i];
        }
    EXPECT_EQ(image_diff, 0) << name << ": image rows changed with the queries";
    EXPECT_GT(query_diff, 0) << name << ": the query rows did not change (the test would prove nothing)";
  }
}

TEST(qwen2_encoder, refuses_a_view_without_queries) {
  Runtime& r = rt();
  const Qwen2EncoderConfig c = tiny_config();
  const HostWeights hw = random_weights(c, 3);
  Qwen2Encoder enc = load_qwen2_encoder(r, MapWeights(hw), c);
  const Tensor feats = r.upload(random_floats(static_cast<size_t>(8 * c.hidden), 4), {1, 8, c.hidden});
  expect_error_containing([&] { qwen2_encoder_forward(r, enc, feats); }, "a view of 8 image tokens has no learned");
  const Tensor wide = r.upload(random_floats(static_cast<size_t>(7 * 32), 4), {1, 7, 32});
  expect_error_containing([&] { qwen2_encoder_forward(r, enc, wide); }, "features must be f32 [B,N,64]");
  Tensor x = r.upload(random_floats(static_cast<size_t>(2 * 7 * 64), 4), {2, 7, 64});  // 7 rows: not 2N for N 7
  expect_error_containing(
      [&] { qwen2_encoder_layer_forward(r, c, enc.layers[0], enc.rope, x, enc.positions.at(7), 7); },
      "x must be f32 [B,2N,64] with N = 7");
}

TEST(qwen2_encoder, refuses_bad_config_and_weights) {
  Runtime& r = rt();
  Qwen2EncoderConfig c = tiny_config();
  HostWeights hw = random_weights(c, 9);
  Qwen2EncoderConfig same = c;
  same.global_queries = same.tile_queries;
  expect_error_containing([&] { load_qwen2_encoder(r, MapWeights(hw), same); }, "must differ");
  Qwen2EncoderConfig odd = c;
  odd.heads = 3;  // 64 / 3
  expect_error_containing([&] { load_qwen2_encoder(r, MapWeights(hw), odd); }, "must divide hidden 64");
  hw.erase("model.model.layers.1.self_attn.k_proj.bias");
  expect_error_containing([&] { load_qwen2_encoder(r, MapWeights(hw), c); },
                          "no tensor model.model.layers.1.self_attn.k_proj.bias");
}

// sdpa.cl (flash and decode variants) against a double-precision reference: awkward sizes, grouped
// KV heads, strided layouts (fused projections in, [B,N,H,D] out), each bias kind, causal masks,
// the LM's shapes and KV-cache decode, and bad inputs.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "harness/harness.h"
#include "runtime/ops/sdpa.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

constexpr double kAtol = 1e-5, kRtol = 1e-4;

// Element (b,h,n,d) of a view over host data, gathered into a dense [B,H,N,D] double array.
std::vector<double> gather(const std::vector<float>& data, const ops::AttnView& v) {
  std::vector<double> out(static_cast<size_t>(v.B * v.H * v.N * v.D));
  size_t o = 0;
  for (int64_t b = 0; b < v.B; ++b)
    for (int64_t h = 0; h < v.H; ++h)
      for (int64_t n = 0; n < v.N; ++n)
        for (int64_t d = 0; d < v.D; ++d) out[o++] = data[v.offset + b * v.sb + h * v.sh + n * v.sn + d];
  return out;
}

struct RefBias {
  const std::vector<float>* dense = nullptr;  // [bB,bH,Nq,Nk]
  int64_t bB = 1, bH = 1;
  const std::vector<float>* rel_h = nullptr;  // [B,H,Nq,kh]
  const std::vector<float>* rel_w = nullptr;  // [B,H,Nq,kw]
  int64_t kh = 0, kw = 0;
};

// out [B,H,Nq,D] from q [B,H,Nq,D], k and v [B,Hkv,Nk,D]; rows with no visible key are zero.
std::vector<double> ref_sdpa(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                             int64_t B, int64_t H, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t D, double scale,
                             bool causal, const RefBias& rb = {}) {
  std::vector<double> out(static_cast<size_t>(B * H * Nq * D), 0.0), s(Nk);
  const double ninf = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t hk = h / (H / Hkv);
      const double* kb = &k[((b * Hkv + hk) * Nk) * D];
      const double* vb = &v[((b * Hkv + hk) * Nk) * D];
      for (int64_t i = 0; i < Nq; ++i) {
        const double* qi = &q[((b * H + h) * Nq + i) * D];
        double m = ninf;
        for (int64_t j = 0; j < Nk; ++j) {
          if (causal && j > i + Nk - Nq) {
            s[j] = ninf;
            continue;
          }
          double acc = 0;
          for (int64_t d = 0; d < D; ++d) acc += qi[d] * kb[j * D + d];
          acc *= scale;
          if (rb.dense) acc += (*rb.dense)[(((rb.bB == 1 ? 0 : b) * rb.bH + (rb.bH == 1 ? 0 : h)) * Nq + i) * Nk + j];
          if (rb.rel_h) {
            int64_t row = (b * H + h) * Nq + i;
            acc += (*rb.rel_h)[row * rb.kh + j / rb.kw] + (*rb.rel_w)[row * rb.kw + j % rb.kw];
          }
          s[j] = acc;
          m = std::max(m, acc);
        }
        if (m == ninf) continue;  // fully masked row: zeros
        double l = 0;
        double* oi = &out[((b * H + h) * Nq + i) * D];
        for (int64_t j = 0; j < Nk; ++j) {
          if (s[j] == ninf) continue;
          double p = std::exp(s[j] - m);
          l += p;
          for (int64_t d = 0; d < D; ++d) oi[d] += p * vb[j * D + d];
        }
        for (int64_t d = 0; d < D; ++d) oi[d] /= l;
      }
    }
  return out;
}

enum class Layout { dense, strided };
enum class BiasKind { none, full, shared, per_batch };

struct Case {
  int64_t B = 1, H = 4, Hkv = 2, Nq = 7, Nk = 7, D = 64;
  bool causal = false;
  Layout layout = Layout::dense;
  BiasKind bias = BiasKind::none;
  bool bias_masks = false;  // -inf entries in the bias, and one fully masked row
  bool rel_pos = false;
  int64_t kh = 0, kw = 0;
  ops::SdpaAlgo algo = ops::SdpaAlgo::automatic;
  int splits = 0;
  float range = 1.f;
  uint32_t seed = 1;
};

std::string describe(const Case& c) {
  return fmt::format(
      "B={} H={} Hkv={} Nq={} Nk={} D={} causal={} layout={} bias={} masks={} rel_pos={} algo={} splits={}", c.B, c.H,
      c.Hkv, c.Nq, c.Nk, c.D, c.causal, c.layout == Layout::dense ? "dense" : "strided", static_cast<int>(c.bias),
      c.bias_masks, c.rel_pos, static_cast<int>(c.algo), c.splits);
}

void run_case(const Case& c) {
  SCOPED_TRACE(describe(c));
  Runtime& r = rt();
  const int64_t B = c.B, H = c.H, Hkv = c.Hkv, Nq = c.Nq, Nk = c.Nk, D = c.D;
  ops::AttnView qv, kv, vv, ov;
  std::vector<float> qd, kd, vd;
  std::unique_ptr<Guarded> y;
  if (c.layout == Layout::dense) {
    qd = random_floats(B * H * Nq * D, c.seed, -c.range, c.range);
    kd = random_floats(B * Hkv * Nk * D, c.seed + 1, -c.range, c.range);
    vd = random_floats(B * Hkv * Nk * D, c.seed + 2, -1.f, 1.f);
    qv = ops::AttnView::bhnd(r.upload(qd, {B, H, Nq, D}));
    kv = ops::AttnView::bhnd(r.upload(kd, {B, Hkv, Nk, D}));
    vv = ops::AttnView::bhnd(r.upload(vd, {B, Hkv, Nk, D}));
    y = std::make_unique<Guarded>(r, Shape{B, H, Nq, D});
    ov = ops::AttnView::bhnd(*y);
  } else if (Nq == Nk) {
    // One fused projection [B,N,H+2Hkv,D] (q heads | k heads | v heads), as Qwen2's qkv.
    const int64_t Ht = H + 2 * Hkv;
    qd = random_floats(B * Nq * Ht * D, c.seed, -c.range, c.range);
    Tensor qkv = r.upload(qd, {B, Nq, Ht, D});
    qv = ops::AttnView::heads(qkv, 0, H);
    kv = ops::AttnView::heads(qkv, H, Hkv);
    vv = ops::AttnView::heads(qkv, H + Hkv, Hkv);
    kd = vd = qd;
    y = std::make_unique<Guarded>(r, Shape{B, Nq, H, D});
    ov = ops::AttnView::bnhd(*y);
  } else {
    // q [B,Nq,H,D], k|v fused [B,Nk,2,Hkv,D] (a KV cache kept token-major).
    qd = random_floats(B * Nq * H * D, c.seed, -c.range, c.range);
    kd = random_floats(B * Nk * 2 * Hkv * D, c.seed + 1, -c.range, c.range);
    qv = ops::AttnView::bnhd(r.upload(qd, {B, Nq, H, D}));
    Tensor kvt = r.upload(kd, {B, Nk, 2, Hkv, D});
    kv = ops::AttnView::fused(kvt, 0);
    vv = ops::AttnView::fused(kvt, 1);
    vd = kd;
    y = std::make_unique<Guarded>(r, Shape{B, Nq, H, D});
    ov = ops::AttnView::bnhd(*y);
  }

  ops::SdpaParams p;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  p.causal = c.causal;
  p.algo = c.algo;
  p.kv_splits = c.splits;
  RefBias rb;
  std::vector<float> bias, relh, relw;
  if (c.bias != BiasKind::none) {
    rb.bB = c.bias == BiasKind::shared ? 1 : B;
    rb.bH = c.bias == BiasKind::full ? H : 1;
    bias = random_floats(rb.bB * rb.bH * Nq * Nk, c.seed + 3, -2.f, 2.f);
    if (c.bias_masks) {
      const float ninf = -std::numeric_limits<float>::infinity();
      for (size_t e = 0; e < bias.size(); ++e) {
        int64_t j = static_cast<int64_t>(e % Nk), i = static_cast<int64_t>(e / Nk % Nq);
        if ((i + 2 * j) % 5 == 0 || i == Nq / 2) bias[e] = ninf;  // row Nq/2 fully masked
      }
    }
    rb.dense = &bias;
    Shape bs = c.bias == BiasKind::shared ? Shape{Nq, Nk} : Shape{rb.bB, rb.bH, Nq, Nk};
    p.bias = ops::AttnBias::dense(r.upload(bias, bs));
  }
  if (c.rel_pos) {
    relh = random_floats(B * H * Nq * c.kh, c.seed + 4, -2.f, 2.f);
    relw = random_floats(B * H * Nq * c.kw, c.seed + 5, -2.f, 2.f);
    rb.rel_h = &relh;
    rb.rel_w = &relw;
    rb.kh = c.kh;
    rb.kw = c.kw;
    p.rel_pos = ops::RelPosBias{r.upload(relh, {B, H, Nq, c.kh}), r.upload(relw, {B, H, Nq, c.kw})};
  }

  ops::sdpa(r, qv, kv, vv, ov, p);
  auto ref = ref_sdpa(gather(qd, qv), gather(kd, kv), gather(vd, vv), B, H, Hkv, Nq, Nk, D, p.scale, c.causal, rb);
  auto got = gather(y->read_f32(), ov);
  EXPECT_TRUE(all_close(std::vector<float>(got.begin(), got.end()), ref, {B, H, Nq, D}, kAtol, kRtol));
}

const int64_t kSizes[] = {1, 7, 17, 61, 127};

}  // namespace

TEST(sdpa, flash_awkward_sizes) {
  for (int64_t D : {7, 64, 128})
    for (int64_t nq : kSizes)
      for (int64_t nk : kSizes) {
        Case c;
        c.B = 2, c.H = 4, c.Hkv = 2, c.Nq = nq, c.Nk = nk, c.D = D, c.algo = ops::SdpaAlgo::flash;
        c.seed = static_cast<uint32_t>(D * 1000 + nq * 10 + nk);
        run_case(c);
      }
}

TEST(sdpa, decode_awkward_sizes) {
  // The decode kernel is generic in Nq; forcing it on every shape checks its row mapping.
  for (int64_t D : {7, 64, 128})
    for (int64_t nq : {1, 7})
      for (int64_t nk : kSizes)
        for (int splits : {0, 1, 3}) {
          Case c;
          c.B = 2, c.H = 4, c.Hkv = 2, c.Nq = nq, c.Nk = nk, c.D = D, c.algo = ops::SdpaAlgo::decode;
          c.splits = splits, c.seed = static_cast<uint32_t>(D * 1000 + nq * 10 + nk + splits);
          run_case(c);
        }
}

TEST(sdpa, tiny) {
  for (auto algo : {ops::SdpaAlgo::automatic, ops::SdpaAlgo::flash, ops::SdpaAlgo::decode}) {
    Case c;
    c.B = 1, c.H = 1, c.Hkv = 1, c.Nq = 1, c.Nk = 1, c.D = 7, c.algo = algo;
    run_case(c);
  }
}

TEST(sdpa, causal_grouped_heads) {
  // H=14 query heads over 2 kv heads (DeepSeek-OCR-2's Qwen2 encoder). (17, 7): the first rows see
  // no key at all and must come out as zeros.
  std::pair<int64_t, int64_t> shapes[] = {{1, 1},   {1, 7},    {7, 7},     {7, 17}, {17, 61},
                                          {61, 61}, {61, 127}, {127, 127}, {17, 7}};
  for (auto algo : {ops::SdpaAlgo::flash, ops::SdpaAlgo::decode})
    for (auto [nq, nk] : shapes) {
      Case c;
      c.B = 1, c.H = 14, c.Hkv = 2, c.Nq = nq, c.Nk = nk, c.D = 64, c.causal = true, c.algo = algo, c.range = 2.f;
      c.seed = static_cast<uint32_t>(nq * 7 + nk);
      run_case(c);
    }
  Case c;  // H=4, Hkv=2, D=7 with Nq < Nk
  c.B = 2, c.Nq = 17, c.Nk = 61, c.D = 7, c.causal = true;
  run_case(c);
}

TEST(sdpa, strided_layouts) {
  // q/k/v read from fused projections at offsets, out written as [B,N,H,D].
  std::pair<int64_t, int64_t> heads[] = {{4, 2}, {14, 2}, {12, 12}};
  for (auto [H, Hkv] : heads)
    for (auto [nq, nk] : {std::pair<int64_t, int64_t>{61, 61}, {17, 61}, {1, 127}, {127, 127}})
      for (bool causal : {false, true}) {
        Case c;
        c.B = 2, c.H = H, c.Hkv = Hkv, c.Nq = nq, c.Nk = nk, c.D = 64, c.causal = causal, c.layout = Layout::strided;
        c.seed = static_cast<uint32_t>(H * 100 + nq + nk + causal);
        run_case(c);
      }
  Case c;  // D=128 strided, as the LM's fused qkv
  c.B = 1, c.H = 10, c.Hkv = 10, c.Nq = 61, c.Nk = 61, c.D = 128, c.causal = true, c.layout = Layout::strided;
  run_case(c);
}

TEST(sdpa, dense_bias_kinds) {
  for (auto kind : {BiasKind::full, BiasKind::shared, BiasKind::per_batch})
    for (bool masks : {false, true})
      for (auto [nq, nk] : {std::pair<int64_t, int64_t>{17, 61}, {61, 17}, {1, 127}, {127, 127}})
        for (auto algo : {ops::SdpaAlgo::flash, ops::SdpaAlgo::decode}) {
          Case c;
          c.B = 2, c.H = 4, c.Hkv = 2, c.Nq = nq, c.Nk = nk, c.D = 64, c.bias = kind, c.bias_masks = masks;
          c.algo = algo, c.layout = nq == nk ? Layout::strided : Layout::dense;
          c.seed = static_cast<uint32_t>(static_cast<int>(kind) * 1000 + masks * 100 + nq + nk);
          run_case(c);
        }
}

TEST(sdpa, qwen2_mask_shape) {
  // v2 encoder: [B,1,2N,2N] additive mask (image->query blocked, causal among queries), 14/2 heads.
  const int64_t N = 17, T = 2 * N;
  Case c;
  c.B = 2, c.H = 14, c.Hkv = 2, c.Nq = T, c.Nk = T, c.D = 64, c.layout = Layout::strided;
  Runtime& r = rt();
  std::vector<float> mask(c.B * T * T, 0.f);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        bool allowed = j < N || (i >= N && j <= i);
        if (!allowed) mask[(b * T + i) * T + j] = -1e9f;
      }
  const int64_t Ht = c.H + 2 * c.Hkv;
  auto qkvd = random_floats(c.B * T * Ht * c.D, 77, -2.f, 2.f);
  Tensor qkv = r.upload(qkvd, {c.B, T, Ht, c.D});
  auto qv = ops::AttnView::heads(qkv, 0, c.H), kv = ops::AttnView::heads(qkv, c.H, c.Hkv),
       vv = ops::AttnView::heads(qkv, c.H + c.Hkv, c.Hkv);
  Guarded y(r, {c.B, T, c.H, c.D});
  auto ov = ops::AttnView::bnhd(y);
  ops::SdpaParams p;
  p.scale = 0.125f;
  p.bias = ops::AttnBias::dense(r.upload(mask, {c.B, 1, T, T}));
  ops::sdpa(r, qv, kv, vv, ov, p);
  RefBias rb;
  rb.dense = &mask, rb.bB = c.B, rb.bH = 1;
  auto ref =
      ref_sdpa(gather(qkvd, qv), gather(qkvd, kv), gather(qkvd, vv), c.B, c.H, c.Hkv, T, T, c.D, 0.125, false, rb);
  auto got = gather(y.read_f32(), ov);
  EXPECT_TRUE(all_close(std::vector<float>(got.begin(), got.end()), ref, {c.B, c.H, T, c.D}, kAtol, kRtol));
}

TEST(sdpa, decomposed_rel_pos_bias) {
  // Random rel_h/rel_w terms (rel_pos_terms itself is tested in test_rel_pos): key grid 7x9.
  for (auto algo : {ops::SdpaAlgo::flash, ops::SdpaAlgo::decode})
    for (int64_t nq : {1, 17, 63})
      for (bool with_dense : {false, true}) {
        Case c;
        c.B = 2, c.H = 3, c.Hkv = 3, c.Nq = nq, c.Nk = 63, c.kh = 7, c.kw = 9, c.rel_pos = true, c.algo = algo;
        c.bias = with_dense ? BiasKind::per_batch : BiasKind::none;
        c.layout = nq == 63 ? Layout::strided : Layout::dense;
        c.seed = static_cast<uint32_t>(nq + with_dense);
        run_case(c);
      }
}

TEST(sdpa, lm_prefill_shape) {
  // LM: 10 heads x 128, causal, scale 1/sqrt(128); full prefill and a chunk after a cache.
  for (auto [nq, nk] : {std::pair<int64_t, int64_t>{61, 61}, {17, 61}}) {
    Case c;
    c.B = 1, c.H = 10, c.Hkv = 10, c.Nq = nq, c.Nk = nk, c.D = 128, c.causal = true, c.range = 2.f;
    run_case(c);
  }
}

TEST(sdpa, lm_decode_shape) {
  // One query against a 1000-key cache, 10 heads x 128: split decode (auto, 1, uneven 7, more
  // splits than tiles) and flash forced on the same problem.
  for (int splits : {0, 1, 7, 40}) {
    Case c;
    c.B = 1, c.H = 10, c.Hkv = 10, c.Nq = 1, c.Nk = 1000, c.D = 128, c.causal = true, c.splits = splits;
    c.range = 2.f, c.seed = 5;
    run_case(c);
  }
  Case c;
  c.B = 1, c.H = 10, c.Hkv = 10, c.Nq = 1, c.Nk = 1000, c.D = 128, c.algo = ops::SdpaAlgo::flash, c.seed = 5;
  run_case(c);
  Case g;  // grouped heads, strided KV cache, dense bias row
  g.B = 2, g.H = 14, g.Hkv = 2, g.Nq = 1, g.Nk = 1000, g.D = 64, g.layout = Layout::strided, g.bias = BiasKind::full;
  run_case(g);
}

TEST(sdpa, convenience_overload) {
  Runtime& r = rt();
  const int64_t B = 2, H = 4, Hkv = 2, Nq = 17, Nk = 61, D = 64;
  auto qd = random_floats(B * H * Nq * D, 11), kd = random_floats(B * Hkv * Nk * D, 12),
       vd = random_floats(B * Hkv * Nk * D, 13), bd = random_floats(B * Nq * Nk, 14);
  Tensor q = r.upload(qd, {B, H, Nq, D}), k = r.upload(kd, {B, Hkv, Nk, D}), v = r.upload(vd, {B, Hkv, Nk, D});
  Tensor bias = r.upload(bd, {B, 1, Nq, Nk});
  Guarded y(r, {B, H, Nq, D});
  ops::sdpa(r, q, k, v, &bias, y, 0.125f, true);
  RefBias rb;
  rb.dense = &bd, rb.bB = B, rb.bH = 1;
  auto ref = ref_sdpa(to_double(qd), to_double(kd), to_double(vd), B, H, Hkv, Nq, Nk, D, 0.125, true, rb);
  EXPECT_TRUE(all_close(y.read_f32(), ref, {B, H, Nq, D}, kAtol, kRtol));
}

namespace {
template <typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected dsocr::Error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(sdpa, rejects_bad_shapes) {
  Runtime& r = rt();
  auto z = [&](Shape s) { return r.upload(std::vector<float>(shape_numel(s), 0.f), s); };
  Tensor q = z({1, 4, 7, 64}), k = z({1, 2, 9, 64}), v = z({1, 2, 9, 64}), out = z({1, 4, 7, 64});
  auto call = [&](const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor* bias, Tensor& o_) {
    ops::sdpa(r, q_, k_, v_, bias, o_, 1.f, false);
  };
  Tensor k_d = z({1, 2, 9, 32});
  expect_error([&] { call(q, k_d, v, nullptr, out); }, "k is [1,2,9,32]");
  Tensor v_n = z({1, 2, 8, 64});
  expect_error([&] { call(q, k, v_n, nullptr, out); }, "v is [1,2,8,64], expected [1,2,9,64]");
  Tensor k_h = z({1, 3, 9, 64}), v_h = z({1, 3, 9, 64});
  expect_error([&] { call(q, k_h, v_h, nullptr, out); }, "not a multiple");
  Tensor o_bad = z({1, 4, 8, 64});
  expect_error([&] { call(q, k, v, nullptr, o_bad); }, "out is [1,4,8,64]");
  Tensor b_bad = z({1, 4, 7, 8});
  expect_error([&] { call(q, k, v, &b_bad, out); }, "does not broadcast");
  Tensor b_h = z({1, 3, 7, 9});
  expect_error([&] { call(q, k, v, &b_h, out); }, "does not broadcast");
  Tensor q3 = z({4, 7, 64});
  expect_error([&] { call(q3, k, v, nullptr, out); }, "q must be [B,H,N,D]");
  Tensor qi = r.upload(std::vector<int32_t>(4 * 7 * 64, 0), {1, 4, 7, 64});
  expect_error([&] { call(qi, k, v, nullptr, out); }, "q must be f32");
  // A view reaching past its tensor.
  auto qv = ops::AttnView::bhnd(q);
  qv.offset = 1;
  expect_error([&] { ops::sdpa(r, qv, ops::AttnView::bhnd(k), ops::AttnView::bhnd(v), ops::AttnView::bhnd(out), {}); },
               "reaches element");
  // rel_pos grid that does not cover Nk.
  ops::SdpaParams p;
  p.rel_pos = ops::RelPosBias{z({1, 4, 7, 2}), z({1, 4, 7, 4})};
  expect_error(
      [&] {
        ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(v), ops::AttnView::bhnd(out),
                  p);
      },
      "key grid 2x4");
  // D over 128 is not implemented (and says so).
  Tensor q9 = z({1, 1, 2, 129}), k9 = z({1, 1, 2, 129}), o9 = z({1, 1, 2, 129});
  EXPECT_THROW(call(q9, k9, k9, nullptr, o9), NotImplemented);
}

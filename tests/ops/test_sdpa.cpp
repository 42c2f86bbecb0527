// sdpa.cl (flash and decode variants) against a double-precision reference: awkward sizes, grouped
// KV heads, strided layouts (fused projections in, [B,N,H,D] out), each bias kind, causal masks,
// the LM's shapes and KV-cache decode, and bad inputs. The table-driven cases are the test-tagged
// descriptors of parity/cases/sdpa.json (parity/op_cases.h), shared with the bench and the golden
// writer; the cases after them are those a descriptor cannot say (a custom mask, an overload,
// errors), and the checks that the descriptors agree with the committed goldens.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "harness/harness.h"
#include "parity/golden.h"
#include "parity/op_cases.h"
#include "runtime/ops/sdpa.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

constexpr double kAtol = 1e-5, kRtol = 1e-4;  // the bespoke cases (descriptors carry their own tolerance)

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
  const std::vector<float>* dense = nullptr;  // [bB,bH,bQ,Nk], each of bB, bH, bQ full or 1
  int64_t bB = 1, bH = 1, bQ = 0;             // bQ 0: Nq
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
          if (rb.dense) {
            const int64_t bQ = rb.bQ ? rb.bQ : Nq;
            const int64_t row = ((rb.bB == 1 ? 0 : b) * rb.bH + (rb.bH == 1 ? 0 : h)) * bQ + (bQ == 1 ? 0 : i);
            acc += (*rb.dense)[row * Nk + j];
          }
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

// One run of the op: a descriptor of parity/cases/sdpa.json, read into the fields run_case uses.
struct Case {
  std::string name;
  int64_t B = 1, H = 4, Hkv = 2, Nq = 7, Nk = 7, D = 64;
  bool causal = false;
  double scale = 0;  // 0: 1/sqrt(D)
  Layout layout = Layout::dense;
  Shape bias;               // the dense bias's shape (rank 2 to 4, broadcast to [B,H,Nq,Nk]); empty: none
  bool bias_masks = false;  // -inf entries in the bias, and one fully masked row
  bool rel_pos = false;
  int64_t kh = 0, kw = 0;
  bool bf16 = false;  // q, k, v rounded to bf16 values
  ops::SdpaAlgo algo = ops::SdpaAlgo::automatic;
  int splits = 0;
  float range = 1.f;
  uint32_t seed = 1;
  double atol = kAtol, rtol = kRtol;
};

Case from_descriptor(const OpCase& d) {
  Case c;
  c.name = d.name;
  c.B = d.get_int("B"), c.H = d.get_int("H"), c.Hkv = d.get_int("Hkv");
  c.Nq = d.get_int("Nq"), c.Nk = d.get_int("Nk"), c.D = d.get_int("D");
  c.causal = d.get_int("causal", 0) != 0;
  c.scale = d.get_float("scale", 0);
  c.layout = d.get_str("layout", "dense") == "strided" ? Layout::strided : Layout::dense;
  if (d.has("bias")) c.bias = d.get_shape("bias");
  c.bias_masks = d.get_str("bias_fill", "random") == "masked";  // sam_rel_pos values: random here
  if (d.has("rel_pos")) {
    auto g = d.get_ints("rel_pos");
    c.rel_pos = true, c.kh = g[0], c.kw = g[1];
  }
  c.bf16 = d.get_str("dtype", "f32") == "bf16";
  std::string algo = d.get_str("algo", "automatic");
  c.algo = algo == "flash" ? ops::SdpaAlgo::flash : algo == "decode" ? ops::SdpaAlgo::decode : ops::SdpaAlgo::automatic;
  c.splits = static_cast<int>(d.get_int("splits", 0));
  c.range = static_cast<float>(d.get_float("range", 1.0));
  c.seed = d.seed;
  c.atol = d.tol.atol, c.rtol = d.tol.rtol;
  return c;
}

std::string describe(const Case& c) {
  return fmt::format(
      "{}: B={} H={} Hkv={} Nq={} Nk={} D={} causal={} layout={} bias={} masks={} rel_pos={} bf16={} algo={} "
      "splits={} tol={}+{}",
      c.name, c.B, c.H, c.Hkv, c.Nq, c.Nk, c.D, c.causal, c.layout == Layout::dense ? "dense" : "strided",
      c.bias.empty() ? "none" : shape_str(c.bias), c.bias_masks, c.rel_pos, c.bf16, static_cast<int>(c.algo), c.splits,
      c.atol, c.rtol);
}

void round_to_bf16(std::vector<float>& v) {
  for (auto& x : v) x = bf16_to_float(float_to_bf16(x));
}

void run_case(const Case& c) {
  SCOPED_TRACE(describe(c));
  Runtime& r = rt();
  const int64_t B = c.B, H = c.H, Hkv = c.Hkv, Nq = c.Nq, Nk = c.Nk, D = c.D;
  ops::AttnView qv, kv, vv, ov;
  std::vector<float> qd, kd, vd;
  std::unique_ptr<Guarded> y;
  auto data = [&](int64_t n, uint32_t seed, float range) {
    auto v = random_floats(n, seed, -range, range);
    if (c.bf16) round_to_bf16(v);
    return v;
  };
  if (c.layout == Layout::dense) {
    qd = data(B * H * Nq * D, c.seed, c.range);
    kd = data(B * Hkv * Nk * D, c.seed + 1, c.range);
    vd = data(B * Hkv * Nk * D, c.seed + 2, 1.f);
    qv = ops::AttnView::bhnd(r.upload(qd, {B, H, Nq, D}));
    kv = ops::AttnView::bhnd(r.upload(kd, {B, Hkv, Nk, D}));
    vv = ops::AttnView::bhnd(r.upload(vd, {B, Hkv, Nk, D}));
    y = std::make_unique<Guarded>(r, Shape{B, H, Nq, D});
    ov = ops::AttnView::bhnd(*y);
  } else if (Nq == Nk) {
    // One fused projection [B,N,H+2Hkv,D] (q heads | k heads | v heads), as Qwen2's qkv.
    const int64_t Ht = H + 2 * Hkv;
    qd = data(B * Nq * Ht * D, c.seed, c.range);
    Tensor qkv = r.upload(qd, {B, Nq, Ht, D});
    qv = ops::AttnView::heads(qkv, 0, H);
    kv = ops::AttnView::heads(qkv, H, Hkv);
    vv = ops::AttnView::heads(qkv, H + Hkv, Hkv);
    kd = vd = qd;
    y = std::make_unique<Guarded>(r, Shape{B, Nq, H, D});
    ov = ops::AttnView::bnhd(*y);
  } else {
    // q [B,Nq,H,D], k|v fused [B,Nk,2,Hkv,D] (a KV cache kept token-major).
    qd = data(B * Nq * H * D, c.seed, c.range);
    kd = data(B * Nk * 2 * Hkv * D, c.seed + 1, c.range);
    qv = ops::AttnView::bnhd(r.upload(qd, {B, Nq, H, D}));
    Tensor kvt = r.upload(kd, {B, Nk, 2, Hkv, D});
    kv = ops::AttnView::fused(kvt, 0);
    vv = ops::AttnView::fused(kvt, 1);
    vd = kd;
    y = std::make_unique<Guarded>(r, Shape{B, Nq, H, D});
    ov = ops::AttnView::bnhd(*y);
  }

  ops::SdpaParams p;
  p.scale = static_cast<float>(c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(D)));
  p.causal = c.causal;
  p.algo = c.algo;
  p.kv_splits = c.splits;
  RefBias rb;
  std::vector<float> bias, relh, relw;
  if (!c.bias.empty()) {
    Shape b4 = c.bias;  // [.., bQ, Nk] padded to rank 4
    while (b4.size() < 4) b4.insert(b4.begin(), 1);
    rb.bB = b4[0], rb.bH = b4[1], rb.bQ = b4[2];
    bias = random_floats(shape_numel(b4), c.seed + 3, -2.f, 2.f);
    if (c.bias_masks) {
      const float ninf = -std::numeric_limits<float>::infinity();
      for (size_t e = 0; e < bias.size(); ++e) {
        int64_t j = static_cast<int64_t>(e % Nk), i = static_cast<int64_t>(e / Nk % rb.bQ);
        if ((i + 2 * j) % 5 == 0 || i == rb.bQ / 2) bias[e] = ninf;  // row bQ/2 fully masked
      }
    }
    rb.dense = &bias;
    p.bias = ops::AttnBias::dense(r.upload(bias, c.bias));
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
  EXPECT_TRUE(all_close(std::vector<float>(got.begin(), got.end()), ref, {B, H, Nq, D}, c.atol, c.rtol));
}

// The descriptors with the test tag, one gtest per descriptor (its sweep's cases run in turn).
std::vector<std::string> test_groups() {
  std::vector<std::string> groups;
  try {
    for (const auto& d : op_cases("sdpa"))
      if (d.has_tag("test") && std::find(groups.begin(), groups.end(), d.group) == groups.end())
        groups.push_back(d.group);
  } catch (const std::exception&) {
    groups.push_back("unreadable_case_file");  // the test then fails with op_cases' message
  }
  return groups;
}

class SdpaDescriptor : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(SdpaDescriptor, matches_reference) {
  int n = 0;
  for (const auto& d : op_cases("sdpa"))
    if (d.group == GetParam() && d.has_tag("test")) {
      run_case(from_descriptor(d));
      ++n;
    }
  EXPECT_GT(n, 0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(sdpa, SdpaDescriptor, ::testing::ValuesIn(test_groups()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

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

TEST(sdpa, causal_prefix_rule_equals_the_mixed_mask) {
  // DeepSeek-OCR-2's encoder mask as a rule (causal_prefix = N): image tokens (i < N) see the N
  // image tokens, queries (i >= N) see every image token and the queries up to themselves. The
  // same as the dense additive mask of qwen2_mask_shape, through the flash kernel (with and
  // without key splits) and the decode kernel (one query row at a time), and the prefix bounds.
  Runtime& r = rt();
  for (int64_t N : {17, 144}) {
    const int64_t T = 2 * N, H = 14, Hkv = 2, D = 64;
    auto qd = random_floats(H * T * D, 81, -2.f, 2.f), kd = random_floats(Hkv * T * D, 82, -2.f, 2.f),
         vd = random_floats(Hkv * T * D, 83);
    std::vector<float> mask(T * T, 0.f);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j)
        if (!(j < N || (i >= N && j <= i))) mask[i * T + j] = -std::numeric_limits<float>::infinity();
    RefBias rb;
    rb.dense = &mask;
    auto ref = ref_sdpa(to_double(qd), to_double(kd), to_double(vd), 1, H, Hkv, T, T, D, 0.125, false, rb);
    Tensor q = r.upload(qd, {1, H, T, D}), k = r.upload(kd, {1, Hkv, T, D}), v = r.upload(vd, {1, Hkv, T, D});
    for (int splits : {0, 3}) {
      Guarded y(r, {1, H, T, D});
      ops::SdpaParams p;
      p.scale = 0.125f;
      p.causal = true;
      p.causal_prefix = N;
      p.algo = ops::SdpaAlgo::flash;
      p.kv_splits = splits;
      ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(v), ops::AttnView::bhnd(y), p);
      EXPECT_TRUE(all_close(y.read_f32(), ref, {1, H, T, D}, kAtol, kRtol)) << "flash N " << N << " splits " << splits;
    }
    // the decode kernel (one work-group per query row) over all 2N rows at once
    Guarded y(r, {1, H, T, D});
    ops::SdpaParams p;
    p.scale = 0.125f;
    p.causal = true;
    p.causal_prefix = N;
    p.algo = ops::SdpaAlgo::decode;
    ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(v), ops::AttnView::bhnd(y), p);
    EXPECT_TRUE(all_close(y.read_f32(), ref, {1, H, T, D}, kAtol, kRtol)) << "decode N " << N;
  }
  Tensor q = r.empty({1, 2, 4, 8}), k = r.empty({1, 2, 6, 8}), y = r.empty({1, 2, 4, 8});
  ops::SdpaParams p;
  p.causal_prefix = 2;
  expect_error_containing([&] { ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(k),
                                          ops::AttnView::bhnd(y), p); },
                          "causal_prefix 2 must be in 0..Nk = 6 and needs causal");
  p.causal = true;
  p.causal_prefix = 7;
  expect_error_containing([&] { ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(k),
                                          ops::AttnView::bhnd(y), p); },
                          "causal_prefix 7 must be in 0..Nk = 6");
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

TEST(sdpa, kv_stored_as_16_bit) {
  // K and V as a decoder's KV cache stores them (f16 or bf16 bits, widened as loaded): the LM's
  // head dim over 1..4 queries (decode kernel) and 37 causal ones (flash), GQA; the reference
  // reads the same rounded values.
  Runtime& r = rt();
  const int64_t B = 1, H = 4, Hkv = 2, Nk = 300, D = 128;
  auto kd = random_floats(B * Hkv * Nk * D, 21, -2.f, 2.f), vd = random_floats(B * Hkv * Nk * D, 22, -2.f, 2.f);
  for (DType dt : {DType::f16, DType::bf16}) {
    std::vector<uint16_t> kb(kd.size()), vb(vd.size());
    std::vector<float> kr(kd.size()), vr(vd.size());
    for (size_t i = 0; i < kd.size(); ++i) {
      kb[i] = dt == DType::f16 ? float_to_half(kd[i]) : float_to_bf16(kd[i]);
      vb[i] = dt == DType::f16 ? float_to_half(vd[i]) : float_to_bf16(vd[i]);
      kr[i] = dt == DType::f16 ? half_to_float(kb[i]) : bf16_to_float(kb[i]);
      vr[i] = dt == DType::f16 ? half_to_float(vb[i]) : bf16_to_float(vb[i]);
    }
    Tensor k = r.upload(kb.data(), {B, Hkv, Nk, D}, dt), v = r.upload(vb.data(), {B, Hkv, Nk, D}, dt);
    for (int64_t Nq : {1, 4, 37}) {
      auto qd = random_floats(B * H * Nq * D, 23 + Nq);
      Tensor q = r.upload(qd, {B, H, Nq, D});
      Guarded y(r, {B, H, Nq, D});
      ops::sdpa(r, q, k, v, nullptr, y, 0.088f, true);
      auto ref = ref_sdpa(to_double(qd), to_double(kr), to_double(vr), B, H, Hkv, Nq, Nk, D, 0.088, true);
      EXPECT_TRUE(all_close(y.read_f32(), ref, {B, H, Nq, D}, kAtol, kRtol)) << dtype_name(dt) << " Nq " << Nq;
    }
    Tensor v32 = r.upload(vd, {B, Hkv, Nk, D}), q1 = r.empty({B, H, 1, D}), y1 = r.empty({B, H, 1, D});
    expect_error_containing([&] { ops::sdpa(r, q1, k, v32, nullptr, y1, 1.f, false); },
                            "K and V must share one storage");
    expect_error_containing([&] { ops::sdpa(r, k, k, v, nullptr, y1, 1.f, false); }, "q must be f32, got");
  }
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

namespace {
std::string source_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return s ? s : DSOCR_KERNEL_DIR "/..";
}

void expect_shape(const GoldenCase& g, const char* group, const char* name, const Shape& want) {
  const auto& m = std::string(group) == "inputs" ? g.inputs : g.outputs;
  auto it = m.find(name);
  ASSERT_NE(it, m.end()) << g.path << ": no " << group << "/" << name;
  EXPECT_EQ(shape_str(it->second.shape), shape_str(want)) << g.path << ": " << group << "/" << name;
}
}  // namespace

// Every golden-tagged descriptor is a committed golden with the same shapes, parameters and tolerance (the file's
// atol/rtol, or the contract's default when it has none), so the three users of the descriptor agree.
TEST(sdpa, descriptors_match_committed_goldens) {
  int n = 0;
  for (const auto& d : op_cases("sdpa", "golden")) {
    SCOPED_TRACE(d.name);
    GoldenCase g = read_golden(source_dir() + "/tests/goldens/ops/" + d.name + ".h5");
    EXPECT_EQ(g.op, "sdpa");
    const int64_t B = d.get_int("B"), H = d.get_int("H"), Hkv = d.get_int("Hkv"), Nq = d.get_int("Nq"),
                  Nk = d.get_int("Nk"), D = d.get_int("D");
    expect_shape(g, "inputs", "q", {B, H, Nq, D});
    expect_shape(g, "inputs", "k", {B, Hkv, Nk, D});
    expect_shape(g, "inputs", "v", {B, Hkv, Nk, D});
    expect_shape(g, "outputs", "out", {B, H, Nq, D});
    if (d.has("bias"))
      expect_shape(g, "inputs", "bias", d.get_shape("bias"));
    else
      EXPECT_EQ(g.input_opt("bias"), nullptr);
    EXPECT_DOUBLE_EQ(g.attr_float("scale"), d.get_float("scale", 1.0 / std::sqrt(static_cast<double>(D))));
    EXPECT_EQ(g.attr_int("causal", 0), d.get_int("causal", 0));
    Tolerance t = golden_tolerance(g);
    EXPECT_EQ(t.atol, d.tol.atol);
    EXPECT_EQ(t.rtol, d.tol.rtol);
    ++n;
  }
  EXPECT_GE(n, 11);
}

// The bench's cases are there, with their --small variants (whose names dsocr bench kernels derives from them).
TEST(sdpa, bench_descriptors) {
  auto bench = op_cases("sdpa", "bench");
  ASSERT_EQ(bench.size(), 5u);
  EXPECT_EQ(bench[0].name, "sdpa_sam_window_relpos");
  EXPECT_EQ(bench[1].small().get_int("Nk"), 1024);
  EXPECT_EQ(bench[1].small().get_ints("rel_pos"), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(bench[4].small().get_int("H"), 10);  // an override of Nk only
  const OpCase* swept = find_op_case("sdpa", "flash_awkward_sizes/D=64,Nq=17,Nk=127");
  ASSERT_NE(swept, nullptr);
  EXPECT_EQ(swept->get_int("Nk"), 127);
  EXPECT_EQ(swept->tol.atol, 1e-5);  // the file's default
}

// A malformed descriptor file is refused, the message naming the file, the case and the field.
TEST(sdpa, descriptor_errors) {
  auto bad = [](const std::string& cases, const std::string& needle) {
    const std::string text = R"({"op": "sdpa", "defaults": {"atol": 1, "rtol": 1}, "cases": [)" + cases + "]}";
    expect_error([&] { parse_op_cases(text, "x.json"); }, needle);
  };
  const std::string shape = R"("B": 1, "H": 4, "Hkv": 2, "Nq": 3, "Nk": 5, "D": 8)";
  bad(R"({"name": "a", "tags": ["test"], "H": 4, "Hkv": 2, "Nq": 3, "Nk": 5, "D": 8})",
      "x.json: op case sdpa/a: field 'B' is missing");
  bad(R"({"name": "a", "tags": ["test"], "B": "1", "H": 4, "Hkv": 2, "Nq": 3, "Nk": 5, "D": 8})",
      "op case sdpa/a: field 'B' = \"1\": expected an integer");
  bad(R"({"name": "a", "tags": ["test"], "B": 1, "H": 3, "Hkv": 2, "Nq": 3, "Nk": 5, "D": 8})",
      "field 'H' = 3 is not a multiple of field 'Hkv' = 2");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "colour": 1})", "op case sdpa/a: unknown field 'colour'");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "algo": "fast"})",
      "field 'algo' = \"fast\": expected one of automatic, flash, decode");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "bias": [1, 3, "Nq", "Nk"]})",
      "field 'bias' [1,3,3,5] does not broadcast to [1,4,3,5]");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "bias": ["Nq", "K"]})",
      "field 'bias': entry \"K\" is neither a size >= 1 nor an integer field");
  bad(R"({"name": "a", "tags": ["nightly"], )" + shape + "}", "field 'tags': \"nightly\" is not one of");
  bad(R"({"name": "a", "tags": ["golden"], )" + shape + R"(, "sweep": {"D": [8, 16]}})", "cannot have a sweep");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "sweep": {"Nq,Nk": [[1, 2, 3]]}})",
      "sweep axis 'Nq,Nk': value [1,2,3] must be an array of 2 values");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(, "sweep": {"D": [8, 0]}})",
      "op case sdpa/a/D=0: field 'D' = 0: out of range");
  bad(R"({"name": "a", "tags": ["bench"], )" + shape + R"(, "small": {"Nk": 7}, "rel_pos": [1, 5]})",
      "field 'rel_pos' grid 1x5 does not cover 7 keys");
  bad(R"({"name": "a", "tags": ["test"], )" + shape + R"(}, {"name": "a", "tags": ["test"], )" + shape + "}",
      "case name 'a' is not unique");
  expect_error([] { parse_op_cases(R"({"op": "sdpa", "cases": [{"name": "a", "tags": ["test"]}]})", "y.json"); },
               "y.json: op case sdpa/a: field 'atol' is missing");
  expect_error([] { parse_op_cases("{", "z.json"); }, "z.json: not valid JSON");
  expect_error([] { op_cases("no_such_op"); }, "no case descriptors for op 'no_such_op'");
}

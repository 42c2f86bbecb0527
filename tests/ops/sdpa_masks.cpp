// sdpa.cl's masks and storages that the descriptors cannot say: a dense mixed mask (the v2
// encoder's), the same mask as the causal_prefix rule, K/V stored as 16 bits (a decoder's KV
// cache), and the convenience overload. Part of the test_sdpa executable.
#include <cmath>
#include <limits>
#include <utility>

#include "harness/harness.h"
#include "runtime/ops/sdpa.h"
#include "sdpa_test_util.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {
enum class Layout { dense, strided };
struct Case {
  int64_t B = 1, H = 4, Hkv = 2, Nq = 7, Nk = 7, D = 64;
  Layout layout = Layout::dense;
};
}  // namespace

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
    // flash (with and without key splits), then decode (one work-group per query row, all 2N rows)
    for (auto [algo, splits] : {std::pair{ops::SdpaAlgo::flash, 0}, {ops::SdpaAlgo::flash, 3},
                                {ops::SdpaAlgo::decode, 0}}) {
      Guarded y(r, {1, H, T, D});
      ops::SdpaParams p;
      p.scale = 0.125f;
      p.causal = true;
      p.causal_prefix = N;
      p.algo = algo;
      p.kv_splits = splits;
      ops::sdpa(r, ops::AttnView::bhnd(q), ops::AttnView::bhnd(k), ops::AttnView::bhnd(v), ops::AttnView::bhnd(y), p);
      EXPECT_TRUE(all_close(y.read_f32(), ref, {1, H, T, D}, kAtol, kRtol))
          << (algo == ops::SdpaAlgo::flash ? "flash" : "decode") << " N " << N << " splits " << splits;
    }
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


// rope.cl (half-rotation / NeoX rotary embedding) against a double-precision reference.
#include <cmath>
#include <numeric>

#include "harness/harness.h"
#include "runtime/ops/rope.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// The logical [B,H,N,D] elements of view v over flat storage `flat`.
std::vector<float> gather(const std::vector<float>& flat, const ops::AttnView& v) {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(v.B * v.H * v.N * v.D));
  for (int64_t b = 0; b < v.B; ++b)
    for (int64_t h = 0; h < v.H; ++h)
      for (int64_t n = 0; n < v.N; ++n)
        for (int64_t d = 0; d < v.D; ++d) out.push_back(flat[v.offset + b * v.sb + h * v.sh + n * v.sn + d]);
  return out;
}

// x [B,H,N,D] logical. inv_freq and the angle are fp32 exactly as torch computes them (the recipe
// is restated here rather than calling ops::rope_inv_freq); cos/sin are the exact (double) values
// of the fp32 angle, as in the goldens.
std::vector<double> ref_rope(const std::vector<float>& x, int64_t B, int64_t H, int64_t N, int64_t D,
                             const std::vector<int32_t>& pos, float theta) {
  const int64_t half = D / 2;
  std::vector<float> inv(half);
  for (int64_t k = 0; k < half; ++k) {
    volatile float e = static_cast<float>(2 * k) / static_cast<float>(D);
    volatile float p = powf(theta, e);
    inv[k] = 1.0f / p;
  }
  std::vector<double> y(x.size());
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t n = 0; n < N; ++n) {
      const float* xr = &x[(bh * N + n) * D];
      double* yr = &y[(bh * N + n) * D];
      for (int64_t k = 0; k < half; ++k) {
        volatile float angle = static_cast<float>(pos[n]) * inv[k];
        double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
        yr[k] = double(xr[k]) * c - double(xr[k + half]) * s;
        yr[k + half] = double(xr[k + half]) * c + double(xr[k]) * s;
      }
    }
  return y;
}

std::vector<int32_t> iota(int64_t n, int32_t start) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

}  // namespace

TEST(rope, inv_freq_recipe) {
  auto f = ops::rope_inv_freq(128, 1e4f);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f[0], 1.0f);
  for (size_t k = 0; k < f.size(); ++k)
    EXPECT_NEAR(f[k], std::pow(1e4, -2.0 * k / 128.0), 1e-6 * std::pow(1e4, -2.0 * k / 128.0)) << k;
}

TEST(rope, bhnd_random_positions) {
  // awkward shapes, positions anywhere in the LM's 8192-token range.
  for (Shape s : {Shape{2, 2, 7, 6}, Shape{1, 3, 17, 16}}) {
    auto x = random_floats(shape_numel(s), 101);
    auto pos = random_ints(s[2], 102, 0, 8191);
    Tensor xt = rt().upload(x, s), pt = rt().upload(pos, {s[2]});
    Guarded y(rt(), s);
    ops::rope(rt(), ops::AttnView::bhnd(xt), pt, 1e4f, ops::AttnView::bhnd(y.tensor()));
    // cos/sin of angles up to ~8191 rad: fp32 argument reduction of the device's cos/sin (a few
    // ulp of the result) stays far below atol.
    EXPECT_TRUE(all_close(y.read_f32(), ref_rope(x, s[0], s[1], s[2], s[3], pos, 1e4f), s, 1e-5, 1e-4)) << shape_str(s);
    // x is untouched.
    EXPECT_TRUE(all_close(rt().read_f32(xt), to_double(x), s, 0, 0));
  }
}

TEST(rope, lm_prefill_in_place_bnhd) {
  // LM: 10 heads x 128, positions 0..60, in place on q as it comes out of the projection [1,T,10,128].
  const int64_t T = 61, H = 10, D = 128;
  auto x = random_floats(T * H * D, 103, -2.f, 2.f);
  Tensor xt = rt().upload(x, {1, T, H, D}), pt = rt().upload(iota(T, 0), {T});
  auto v = ops::AttnView::bnhd(xt);
  ops::rope(rt(), v, pt, 1e4f, v);
  auto got = gather(rt().read_f32(xt), v);
  EXPECT_TRUE(all_close(got, ref_rope(gather(x, v), 1, H, T, D, iota(T, 0), 1e4f), v.shape(), 1e-5, 1e-4));
}

TEST(rope, lm_decode_position_4097) {
  const int64_t H = 10, D = 128;
  auto x = random_floats(H * D, 104, -2.f, 2.f);
  std::vector<int32_t> pos{4097};
  Tensor xt = rt().upload(x, {1, 1, H, D}), pt = rt().upload(pos, {1});
  auto v = ops::AttnView::bnhd(xt);
  auto freqs = ops::RopeFreqs::make(rt(), D, 1e4f);
  ops::rope(rt(), v, pt, freqs, v);
  auto got = gather(rt().read_f32(xt), v);
  EXPECT_TRUE(all_close(got, ref_rope(gather(x, v), 1, H, 1, D, pos, 1e4f), v.shape(), 1e-5, 1e-4));
}

TEST(rope, encoder_theta_1e6_d64) {
  // DeepSeek-OCR-2 encoder: 14 heads x 64, theta 1e6, queries at positions N..2N-1 (here 144..150),
  // out of place into a [B,N,H,D] output.
  const int64_t N = 7, H = 14, D = 64;
  auto x = random_floats(2 * H * N * D, 105);
  auto pos = iota(N, 144);
  Tensor xt = rt().upload(x, {2, H, N, D}), pt = rt().upload(pos, {N});
  Guarded y(rt(), {2, N, H, D});
  auto yv = ops::AttnView::bnhd(y.tensor());
  ops::rope(rt(), ops::AttnView::bhnd(xt), pt, 1e6f, yv);
  auto got = gather(y.read_f32(), yv);
  EXPECT_TRUE(all_close(got, ref_rope(x, 2, H, N, D, pos, 1e6f), yv.shape(), 1e-5, 1e-4));
}

TEST(rope, in_place_on_fused_heads) {
  // q heads [0,4) and k heads [4,6) of a fused [1,T,4+2+2,16] projection, in place; v untouched.
  const int64_t T = 17, Htot = 8, D = 16;
  auto x = random_floats(T * Htot * D, 106);
  auto pos = random_ints(T, 107, 0, 8191);
  Tensor xt = rt().upload(x, {1, T, Htot, D}), pt = rt().upload(pos, {T});
  auto q = ops::AttnView::heads(xt, 0, 4), k = ops::AttnView::heads(xt, 4, 2), v = ops::AttnView::heads(xt, 6, 2);
  auto freqs = ops::RopeFreqs::make(rt(), D, 1e4f);
  ops::rope(rt(), q, pt, freqs, q);
  ops::rope(rt(), k, pt, freqs, k);
  auto out = rt().read_f32(xt);
  EXPECT_TRUE(all_close(gather(out, q), ref_rope(gather(x, q), 1, 4, T, D, pos, 1e4f), q.shape(), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(gather(out, k), ref_rope(gather(x, k), 1, 2, T, D, pos, 1e4f), k.shape(), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(gather(out, v), to_double(gather(x, v)), v.shape(), 0, 0));
}

// rope_kv_append: q in place, k rotated and v copied into cache rows past.., bit for bit what
// rope on the q and k heads plus a copy gives; other cache rows untouched. GQA (4 q, 2 kv heads)
// and the LM's decode shape (10 heads of 128, one token at position 1000).
TEST(rope, kv_append_equals_rope_and_copy) {
  struct Case {
    int64_t T, Hq, Hkv, D, cap, past;
  };
  for (auto c : {Case{17, 4, 2, 16, 40, 5}, Case{1, 10, 10, 128, 1030, 1000}, Case{3, 2, 1, 8, 3, 0}}) {
    const int64_t Htot = c.Hq + 2 * c.Hkv, KV = c.Hkv * c.D;
    auto x = random_floats(c.T * Htot * c.D, 108);
    auto pos = random_ints(c.T, 109, 0, 8191);
    auto cache0 = random_floats(c.cap * 2 * KV, 110);
    Tensor qkv = rt().upload(x, {c.T, Htot * c.D}), pt = rt().upload(pos, {c.T});
    Tensor cache = rt().upload(cache0, {c.cap, 2, c.Hkv, c.D});
    auto freqs = ops::RopeFreqs::make(rt(), c.D, 1e4f);
    ops::rope_kv_append(rt(), qkv, c.Hq, c.Hkv, pt, freqs, cache, c.past);
    // The same with the separate ops.
    Tensor x2 = rt().upload(x, {1, c.T, Htot, c.D});
    auto qk = ops::AttnView::heads(x2, 0, c.Hq + c.Hkv);
    ops::rope(rt(), qk, pt, freqs, qk);
    auto xr = rt().read_f32(x2);
    std::vector<float> cache_ref = cache0;
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t e = 0; e < 2 * KV; ++e) cache_ref[(c.past + t) * 2 * KV + e] = xr[t * Htot * c.D + c.Hq * c.D + e];
    auto got = rt().read_f32(qkv);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t e = 0; e < c.Hq * c.D; ++e)
        ASSERT_EQ(got[t * Htot * c.D + e], xr[t * Htot * c.D + e]) << "q, token " << t << " element " << e;
    EXPECT_EQ(rt().read_f32(cache), cache_ref) << c.T << " tokens at " << c.past;
  }
  Tensor qkv = rt().empty({2, 64}), cache = rt().empty({4, 2, 1, 16}),
         p2 = rt().upload(std::vector<int32_t>(2, 0), {2});
  auto freqs = ops::RopeFreqs::make(rt(), 16, 1e4f);
  try {
    ops::rope_kv_append(rt(), qkv, 2, 1, p2, freqs, cache, 3);  // rows 3..5 of 4
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the cache of 4"), std::string::npos) << e.what();
  }
}

TEST(rope, rejects_bad_shapes) {
  Tensor odd = rt().empty({1, 2, 5, 7}), x = rt().empty({1, 2, 5, 8}), y = rt().empty({1, 2, 5, 8});
  Tensor p5 = rt().upload(std::vector<int32_t>(5, 0), {5}), p4 = rt().upload(std::vector<int32_t>(4, 0), {4});
  Tensor pf = rt().empty({5});
  auto xv = ops::AttnView::bhnd(x), yv = ops::AttnView::bhnd(y), ov = ops::AttnView::bhnd(odd);
  EXPECT_THROW(ops::rope(rt(), ov, p5, 1e4f, ov), Error);
  try {
    ops::rope(rt(), xv, p4, 1e4f, yv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [5] i32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::rope(rt(), xv, pf, 1e4f, yv), Error);                                  // f32 positions
  EXPECT_THROW(ops::rope(rt(), xv, p5, 1e4f, ops::AttnView::bnhd(y)), Error);              // y shape [1,5,2,8]
  EXPECT_THROW(ops::rope(rt(), xv, p5, ops::RopeFreqs::make(rt(), 16, 1e4f), yv), Error);  // table D
  // y overlapping x (shifted by one row) in the same tensor.
  auto shifted = xv;
  shifted.N = 4;
  auto shifted_y = shifted;
  shifted_y.offset = 8;
  EXPECT_THROW(ops::rope(rt(), shifted, p4, 1e4f, shifted_y), Error);
}

// resize.cl (resize_bicubic_aa, resize_linear) against double-precision references built from the
// PyTorch formulas (model-spec §5): full separable weight matrices for the antialiased bicubic, the
// half-pixel source index for linear.
#include <cmath>

#include "harness/harness.h"
#include "runtime/ops/resize.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

double keys(double x) {  // a = -0.5
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// [out, in] row-major: torch's antialiased resampling matrix (align_corners=False).
std::vector<double> aa_matrix(int64_t in, int64_t out) {
  std::vector<double> m(out * in, 0.0);
  double scale = double(in) / out, support = 2 * std::max(scale, 1.0), invscale = 1 / std::max(scale, 1.0);
  for (int64_t i = 0; i < out; ++i) {
    double center = scale * (i + 0.5);
    int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    int64_t hi = std::min<int64_t>(int64_t(center + support + 0.5), in);
    double tot = 0;
    for (int64_t j = lo; j < hi; ++j) tot += keys((j - center + 0.5) * invscale);
    for (int64_t j = lo; j < hi; ++j) m[i * in + j] = tot != 0 ? keys((j - center + 0.5) * invscale) / tot : 0;
  }
  return m;
}

// y[n,c] = Mh · x[n,c] · Mwᵀ
std::vector<double> ref_bicubic_aa(const std::vector<float>& x, const Shape& s, int64_t oh, int64_t ow) {
  int64_t NC = s[0] * s[1], H = s[2], W = s[3];
  auto mh = aa_matrix(H, oh), mw = aa_matrix(W, ow);
  std::vector<double> y(NC * oh * ow), t(H * ow);
  for (int64_t p = 0; p < NC; ++p) {
    const float* xp = &x[p * H * W];
    for (int64_t h = 0; h < H; ++h)
      for (int64_t o = 0; o < ow; ++o) {
        double acc = 0;
        for (int64_t w = 0; w < W; ++w) acc += mw[o * W + w] * xp[h * W + w];
        t[h * ow + o] = acc;
      }
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t o = 0; o < ow; ++o) {
        double acc = 0;
        for (int64_t h = 0; h < H; ++h) acc += mh[oy * H + h] * t[h * ow + o];
        y[(p * oh + oy) * ow + o] = acc;
      }
  }
  return y;
}

// torch computes the source coordinate in the input's dtype: scale = float(L)/out and
// src = scale*(o+0.5) - 0.5 rounded to fp32 (fp32_coords); with exact coordinates instead the result
// moves by up to ~|x1-x0|*ulp(src) (a few 1e-5 at L = 127), which is what the float64 goldens see.
std::vector<double> ref_linear(const std::vector<float>& x, int64_t rows, int64_t L, int64_t out, bool fp32_coords) {
  std::vector<double> y(rows * out);
  for (int64_t o = 0; o < out; ++o) {
    double src = (o + 0.5) * double(L) / out - 0.5;
    if (fp32_coords) {
      float scale = float(L) / float(out);
      float half = float(o) + 0.5f;
      float prod = scale * half;
      src = prod - 0.5f;
    }
    src = std::max(src, 0.0);
    int64_t i0 = std::min<int64_t>(int64_t(std::floor(src)), L - 1), i1 = std::min<int64_t>(i0 + 1, L - 1);
    double lam = src - i0;
    for (int64_t r = 0; r < rows; ++r) y[r * out + o] = x[r * L + i0] * (1 - lam) + x[r * L + i1] * lam;
  }
  return y;
}

void check_bicubic(const Shape& s, int64_t oh, int64_t ow, uint32_t seed) {
  auto x = random_floats(shape_numel(s), seed, -2.f, 2.f);
  Tensor xt = rt().upload(x, s);
  Shape ys{s[0], s[1], oh, ow};
  Guarded y(rt(), ys);
  ops::resize_bicubic_aa(rt(), xt, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_bicubic_aa(x, s, oh, ow), ys, 1e-5, 1e-4))
      << shape_str(s) << " -> " << oh << "x" << ow;
}

void check_linear(const Shape& s, int64_t out, uint32_t seed) {
  auto x = random_floats(shape_numel(s), seed, -2.f, 2.f);
  Tensor xt = rt().upload(x, s);
  Shape ys{s[0], s[1], out};
  Guarded y(rt(), ys);
  ops::resize_linear(rt(), xt, y);
  auto out_v = y.read_f32();
  EXPECT_TRUE(all_close(out_v, ref_linear(x, s[0] * s[1], s[2], out, true), ys, 1e-5, 1e-4))
      << shape_str(s) << " -> " << out;
  // Exact coordinates, at the goldens' default fp32 tolerance.
  EXPECT_TRUE(all_close(out_v, ref_linear(x, s[0] * s[1], s[2], out, false), ys, 1e-4, 1e-3))
      << shape_str(s) << " -> " << out << " (exact coordinates)";
}

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(resize, bicubic_aa_down) {
  check_bicubic({2, 3, 127, 61}, 17, 7, 1);  // many taps (scale 7.5 and 8.7)
  check_bicubic({1, 3, 61, 127}, 7, 17, 2);
  check_bicubic({1, 2, 127, 127}, 1, 1, 3);  // the whole axis in one output
  check_bicubic({1, 4, 64, 64}, 32, 32, 4);  // exact factor 2
}

TEST(resize, bicubic_aa_up) {
  check_bicubic({1, 3, 7, 17}, 61, 127, 5);
  check_bicubic({2, 2, 16, 16}, 20, 20, 6);
  check_bicubic({1, 2, 1, 7}, 5, 17, 7);  // a single input row
}

TEST(resize, bicubic_aa_mixed_and_identity) {
  check_bicubic({1, 5, 17, 61}, 61, 17, 8);   // up in H, down in W
  check_bicubic({1, 5, 61, 17}, 7, 127, 9);   // down in H, up in W
  check_bicubic({2, 3, 17, 17}, 17, 17, 10);  // identity: a copy
  check_bicubic({1, 3, 17, 61}, 17, 7, 11);   // H unchanged: horizontal pass only
  check_bicubic({1, 3, 61, 17}, 7, 17, 12);   // W unchanged: vertical pass only
}

TEST(resize, bicubic_aa_bands_and_fallback) {
  // One plane: the fused kernel splits the output rows into many bands (t rows recomputed per band).
  // (Coordinates kept small: ATen's fp32 centres drift from the double reference at large sizes.)
  check_bicubic({1, 1, 64, 50}, 48, 40, 13);
  check_bicubic({1, 1, 40, 30}, 61, 37, 14);
  check_bicubic({1, 3, 33, 47}, 19, 29, 15);
  check_bicubic({1, 2, 19, 29}, 33, 47, 16);
  // One output row needs all 300 rows of t (25 wide: 7500 floats > the 24 KiB tile): the two-pass kernels.
  check_bicubic({1, 2, 300, 30}, 3, 25, 17);
  // W unchanged, 6500-wide rows (> the tile): the vertical kernel alone, reading x.
  check_bicubic({1, 1, 7, 6500}, 3, 6500, 18);
}

TEST(resize, bicubic_aa_real_sam_pos_embed) {
  // SAM pos_embed [1,768,64,64] -> g² for 640/512/768/1280 inputs (128 of the 768 channels).
  for (int64_t g : {40, 32, 48, 80}) check_bicubic({1, 128, 64, 64}, g, g, 20 + g);
}

TEST(resize, bicubic_aa_real_clip_pos_embed) {
  // CLIP position grid [1,1024,16,16] -> g² (all 1024 channels).
  for (int64_t g : {10, 8, 12, 20}) check_bicubic({1, 1024, 16, 16}, g, g, 40 + g);
}

TEST(resize, linear) {
  check_linear({2, 3, 7}, 17, 61);   // up
  check_linear({2, 3, 61}, 7, 62);   // down
  check_linear({1, 5, 17}, 17, 63);  // identity
  check_linear({1, 3, 1}, 5, 64);    // a single input
  check_linear({3, 2, 127}, 1, 65);
}

TEST(resize, linear_real_sam_rel_pos) {
  // SAM rel_pos tables [2*64-1, 64] resized (as [1,64,127]) to 2g-1 for g = 40, 32, 48, 80.
  for (int64_t out : {79, 63, 95, 159}) check_linear({1, 64, 127}, out, 70 + out);
}

TEST(resize, bicubic_aa_rejects_bad_shapes) {
  Tensor x = rt().empty({1, 3, 7, 7});
  Tensor y = rt().empty({1, 4, 5, 5});
  expect_error([&] { ops::resize_bicubic_aa(rt(), x, y); },
               {"resize_bicubic_aa", "y is f32 [1,4,5,5]", "expected f32 [1,3,oh,ow]", "x is [1,3,7,7]"});
  Tensor x3 = rt().empty({3, 7, 7}), y4 = rt().empty({1, 3, 5, 5});
  expect_error([&] { ops::resize_bicubic_aa(rt(), x3, y4); }, {"resize_bicubic_aa", "x is f32 [3,7,7]", "[N,C,H,W]"});
  Tensor xi = rt().empty({1, 3, 7, 7}, DType::i32);
  expect_error([&] { ops::resize_bicubic_aa(rt(), xi, y4); }, {"resize_bicubic_aa", "x is i32", "expected f32"});
}

TEST(resize, linear_rejects_bad_shapes) {
  Tensor x = rt().empty({1, 64, 127});
  Tensor y = rt().empty({64, 79});
  expect_error([&] { ops::resize_linear(rt(), x, y); },
               {"resize_linear", "y is f32 [64,79]", "expected f32 [1,64,out]", "x is [1,64,127]"});
  Tensor y0 = rt().empty({1, 64, 0});
  expect_error([&] { ops::resize_linear(rt(), x, y0); }, {"resize_linear", "[1,64,0]", "positive sizes"});
}

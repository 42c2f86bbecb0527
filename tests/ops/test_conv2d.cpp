// conv2d.cl (im2col + CLBlast GEMM + bias) and unfold against double-precision references.
#include "harness/harness.h"
#include "runtime/ops/conv2d.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

struct Conv {
  int64_t N, C, H, W, O, k;
  int stride, pad;
  bool bias;
  int64_t Ho() const { return (H + 2 * pad - k) / stride + 1; }
  int64_t Wo() const { return (W + 2 * pad - k) / stride + 1; }
};

std::vector<double> ref_conv(const Conv& c, const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>* b) {
  const int64_t Ho = c.Ho(), Wo = c.Wo();
  std::vector<double> y(static_cast<size_t>(c.N * c.O * Ho * Wo));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t ch = 0; ch < c.C; ++ch)
            for (int64_t ki = 0; ki < c.k; ++ki) {
              int64_t ih = oh * c.stride - c.pad + ki;
              if (ih < 0 || ih >= c.H) continue;
              for (int64_t kj = 0; kj < c.k; ++kj) {
                int64_t iw = ow * c.stride - c.pad + kj;
                if (iw < 0 || iw >= c.W) continue;
                s += double(x[((n * c.C + ch) * c.H + ih) * c.W + iw]) * w[((o * c.C + ch) * c.k + ki) * c.k + kj];
              }
            }
          y[((n * c.O + o) * Ho + oh) * Wo + ow] = s;
        }
  return y;
}

void run_conv(const Conv& c, bool f16 = false) {
  auto x = random_floats(c.N * c.C * c.H * c.W, 101);
  auto w = random_floats(c.O * c.C * c.k * c.k, 102, -0.1f, 0.1f);
  auto b = random_floats(c.O, 103);
  Tensor xt = rt().upload(x, {c.N, c.C, c.H, c.W}), bt = rt().upload(b, {c.O});
  Tensor wt;
  if (f16) {
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      h[i] = float_to_half(w[i]);
      w[i] = half_to_float(h[i]);
    }
    wt = rt().upload(h.data(), {c.O, c.C, c.k, c.k}, DType::f16);
  } else {
    wt = rt().upload(w, {c.O, c.C, c.k, c.k});
  }
  Shape ys{c.N, c.O, c.Ho(), c.Wo()};
  Guarded y(rt(), ys);
  ops::conv2d(rt(), xt, wt, c.bias ? &bt : nullptr, y, c.stride, c.pad);
  EXPECT_TRUE(all_close(y.read_f32(), ref_conv(c, x, w, c.bias ? &b : nullptr), ys, 1e-4, 1e-4))
      << c.N << "x" << c.C << "x" << c.H << "x" << c.W << " -> " << c.O << " k" << c.k << " s" << c.stride << " p"
      << c.pad;
}

}  // namespace

TEST(conv2d, awkward) {
  run_conv({1, 3, 7, 7, 7, 3, 1, 1, true});
  run_conv({2, 5, 17, 61, 7, 5, 3, 2, true});
  run_conv({2, 7, 17, 61, 17, 3, 2, 1, false});
  run_conv({3, 17, 7, 9, 5, 1, 1, 0, true});  // 1x1: x read directly, no im2col
}

TEST(conv2d, sam_shapes) {
  run_conv({1, 3, 256, 256, 768, 16, 16, 0, true});  // patch embedding (16x16 grid of a 256 view)
  run_conv({1, 768, 10, 10, 256, 1, 1, 0, false});   // neck.0 1x1
  run_conv({1, 256, 16, 16, 256, 3, 1, 1, false});   // neck.2 3x3
  run_conv({2, 256, 20, 20, 512, 3, 2, 1, false});   // net_2 3x3 s2 (two tiles in one batched GEMM)
  run_conv({1, 512, 10, 10, 1024, 3, 2, 1, false});  // net_3 3x3 s2
}

TEST(conv2d, fp16_weights) { run_conv({2, 5, 17, 17, 7, 3, 2, 1, true}, true); }

TEST(conv2d, unfold) {
  struct U {
    int64_t N, C, H, W;
    int k, s, p;
  };
  // Non-overlapping unpadded patches (k = s, p = 0) take im2col_patch_f32: odd sizes leave rows and
  // columns out, k = s = 1 is a copy; the rest the general im2col_f32 (k = s with padding too, and
  // Wo > 64: several work-groups across a row).
  for (auto u : {U{1, 7, 17, 17, 2, 2, 0}, U{1, 5, 7, 7, 3, 1, 1}, U{2, 3, 17, 61, 3, 2, 1}, U{1, 128, 16, 16, 2, 2, 0},
                 U{1, 1024, 32, 32, 2, 2, 0}, U{2, 3, 33, 35, 4, 4, 0}, U{1, 2, 9, 70, 3, 3, 0}, U{1, 3, 5, 7, 1, 1, 0},
                 U{1, 2, 9, 9, 2, 2, 1}, U{1, 3, 5, 130, 2, 1, 0}, U{1, 4, 8, 8, 3, 2, 2}}) {
    auto x = random_floats(u.N * u.C * u.H * u.W, 111);
    Tensor xt = rt().upload(x, {u.N, u.C, u.H, u.W});
    int64_t Ho = (u.H + 2 * u.p - u.k) / u.s + 1, Wo = (u.W + 2 * u.p - u.k) / u.s + 1, L = Ho * Wo;
    Shape ys{u.N, u.C * u.k * u.k, L};
    Guarded y(rt(), ys);
    ops::unfold(rt(), xt, u.k, u.s, u.p, y);
    std::vector<double> ref(shape_numel(ys));
    for (int64_t n = 0; n < u.N; ++n)
      for (int64_t c = 0; c < u.C; ++c)
        for (int ki = 0; ki < u.k; ++ki)
          for (int kj = 0; kj < u.k; ++kj)
            for (int64_t l = 0; l < L; ++l) {
              int64_t ih = (l / Wo) * u.s - u.p + ki, iw = (l % Wo) * u.s - u.p + kj;
              double v = (ih >= 0 && ih < u.H && iw >= 0 && iw < u.W) ? x[((n * u.C + c) * u.H + ih) * u.W + iw] : 0.0;
              ref[((n * u.C * u.k * u.k) + (c * u.k + ki) * u.k + kj) * L + l] = v;
            }
    EXPECT_TRUE(all_close(y.read_f32(), ref, ys, 0, 0)) << "k" << u.k << " s" << u.s << " p" << u.p;
  }
}

TEST(conv2d, rejects_bad_shapes) {
  Tensor x = rt().empty({1, 3, 8, 8}), w = rt().empty({4, 2, 3, 3}), y = rt().empty({1, 4, 8, 8});
  try {
    ops::conv2d(rt(), x, w, nullptr, y, 1, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be [O,3,kh,kw]"), std::string::npos) << e.what();
  }
  Tensor w2 = rt().empty({4, 3, 3, 3}), y2 = rt().empty({1, 4, 7, 8});
  EXPECT_THROW(ops::conv2d(rt(), x, w2, nullptr, y2, 1, 1), Error);
  Tensor yu = rt().empty({1, 27, 63});
  EXPECT_THROW(ops::unfold(rt(), x, 3, 1, 1, yu), Error);
}

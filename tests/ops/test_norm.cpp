// norm.cl (layer_norm, layer_norm_2d, rms_norm) against double-precision references.
#include <cmath>

#include "harness/harness.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/norm.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// mode 0: layer_norm over rows of C; 1: rms_norm.
std::vector<double> ref_rows(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                             int64_t rows, int64_t C, double eps, int mode) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = &x[r * C];
    if (mode == 0) {
      double m = 0, v = 0;
      for (int64_t c = 0; c < C; ++c) m += xr[c];
      m /= C;
      for (int64_t c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
      v /= C;
      for (int64_t c = 0; c < C; ++c) y[r * C + c] = (xr[c] - m) / std::sqrt(v + eps) * w[c] + b[c];
    } else {
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += double(xr[c]) * xr[c];
      double inv = 1.0 / std::sqrt(s / C + eps);
      for (int64_t c = 0; c < C; ++c) y[r * C + c] = xr[c] * inv * w[c];
    }
  }
  return y;
}

}  // namespace

TEST(norm, layer_norm) {
  // awkward sizes, SAM (768, eps 1e-6), CLIP (1024, eps 1e-5); an offset mean tests the two-pass variance.
  struct Case {
    int64_t rows, C;
    float eps;
  };
  // Row kernels: C % 4 == 0 (float4) or not (scalar), 1..8 values per work-item, rows not a multiple of
  // the rows per work-group, one row, C = 1; C = 2050 (scalar) and 8200 (float4) exceed the register
  // path and take the wide kernels.
  for (auto c :
       {Case{7, 7, 1e-5f}, Case{17, 61, 1e-5f}, Case{61, 127, 1e-6f}, Case{127, 768, 1e-6f}, Case{101, 1024, 1e-5f},
        Case{1, 768, 1e-6f}, Case{9, 1, 1e-5f}, Case{33, 1280, 1e-6f}, Case{3, 4096, 1e-6f}, Case{2, 4092, 1e-6f},
        Case{13, 1030, 1e-5f}, Case{5, 2050, 1e-5f}, Case{4, 8200, 1e-6f}}) {
    auto x = random_floats(c.rows * c.C, 41, 2.f, 6.f);
    auto w = random_floats(c.C, 42, 0.5f, 1.5f), b = random_floats(c.C, 43);
    Tensor xt = rt().upload(x, {c.rows, c.C}), wt = rt().upload(w, {c.C}), bt = rt().upload(b, {c.C});
    Guarded y(rt(), {c.rows, c.C});
    ops::layer_norm(rt(), xt, wt, bt, y, c.eps);
    EXPECT_TRUE(all_close(y.read_f32(), ref_rows(x, w, b, c.rows, c.C, c.eps, 0), {c.rows, c.C}, 1e-4, 1e-4))
        << c.rows << "x" << c.C;
  }
}

TEST(norm, rms_norm) {
  struct Case {
    int64_t rows, C;
  };
  for (auto c : {Case{7, 7}, Case{17, 61}, Case{61, 127}, Case{61, 1280}, Case{3, 896}, Case{1, 1280}, Case{3, 4096},
                 Case{6, 1030}, Case{5, 2050}, Case{2, 8200}, Case{9, 1}}) {
    auto x = random_floats(c.rows * c.C, 51, -3.f, 3.f);
    auto w = random_floats(c.C, 52, 0.5f, 1.5f);
    Tensor xt = rt().upload(x, {c.rows, c.C}), wt = rt().upload(w, {c.C});
    Guarded y(rt(), {c.rows, c.C});
    ops::rms_norm(rt(), xt, wt, y, 1e-6f);
    EXPECT_TRUE(all_close(y.read_f32(), ref_rows(x, w, w, c.rows, c.C, 1e-6, 1), {c.rows, c.C}, 1e-5, 1e-4))
        << c.rows << "x" << c.C;
  }
}

// add_rms_norm must equal the two ops it replaces bit for bit (x + a, or x + (a + b), then rms_norm),
// and x must hold the sum afterwards.
TEST(norm, add_rms_norm) {
  struct Case {
    int64_t rows, C;
    bool two;
  };
  for (auto c :
       {Case{1, 7, false}, Case{17, 61, true}, Case{1, 1280, true}, Case{5, 1280, false}, Case{3, 896, true},
        Case{3, 4096, true}, Case{4, 1030, true}, Case{2, 2050, false}, Case{2, 8200, true}, Case{33, 1280, true}}) {
    const int64_t n = c.rows * c.C;
    auto x = random_floats(n, 71, -3.f, 3.f), a = random_floats(n, 72, -1.f, 1.f), b = random_floats(n, 73);
    auto w = random_floats(c.C, 74, 0.5f, 1.5f);
    Tensor xt = rt().upload(x, {c.rows, c.C}), at = rt().upload(a, {c.rows, c.C}), bt = rt().upload(b, {c.rows, c.C});
    Tensor wt = rt().upload(w, {c.C});
    Guarded y(rt(), {c.rows, c.C});
    ops::add_rms_norm(rt(), xt, at, c.two ? &bt : nullptr, wt, y, 1e-6f);
    // The separate ops on a copy of x.
    Tensor x2 = rt().upload(x, {c.rows, c.C}), y2 = rt().empty({c.rows, c.C});
    if (c.two) {
      Tensor s = rt().empty({c.rows, c.C});
      ops::add(rt(), at, bt, s);
      ops::add(rt(), x2, s, x2);
    } else {
      ops::add(rt(), x2, at, x2);
    }
    ops::rms_norm(rt(), x2, wt, y2, 1e-6f);
    EXPECT_EQ(rt().read_f32(xt), rt().read_f32(x2)) << c.rows << "x" << c.C;
    EXPECT_EQ(y.read_f32(), rt().read_f32(y2)) << c.rows << "x" << c.C;
    // And against double precision.
    std::vector<float> sum(n);
    for (int64_t i = 0; i < n; ++i) sum[i] = x[i] + (c.two ? a[i] + b[i] : a[i]);
    EXPECT_TRUE(all_close(y.read_f32(), ref_rows(sum, w, w, c.rows, c.C, 1e-6, 1), {c.rows, c.C}, 1e-5, 1e-4));
  }
  Tensor x = rt().empty({4, 8}), a = rt().empty({4, 7}), w = rt().empty({8}), y = rt().empty({4, 8});
  try {
    ops::add_rms_norm(rt(), x, a, nullptr, w, y, 1e-6f);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("addend [4,7]"), std::string::npos) << e.what();
  }
}

TEST(norm, layer_norm_2d) {
  // SAM neck: [1,256,64,64] at 1024², plus awkward sizes.
  // C = 384 fills the 24 KiB local tile exactly; C = 512 does not fit it (values re-read); in place too (SAM).
  for (Shape s : {Shape{1, 7, 3, 5}, Shape{2, 17, 7, 9}, Shape{1, 256, 40, 40}, Shape{1, 256, 64, 64},
                  Shape{3, 1, 4, 4}, Shape{1, 384, 3, 7}, Shape{2, 512, 5, 7}}) {
    int64_t N = s[0], C = s[1], HW = s[2] * s[3];
    auto x = random_floats(shape_numel(s), 61, -2.f, 4.f);
    auto w = random_floats(C, 62, 0.5f, 1.5f), b = random_floats(C, 63);
    Tensor xt = rt().upload(x, s), wt = rt().upload(w, {C}), bt = rt().upload(b, {C});
    Guarded y(rt(), s);
    ops::layer_norm_2d(rt(), xt, wt, bt, y, 1e-6f);
    auto out = y.read_f32();
    ops::layer_norm_2d(rt(), xt, wt, bt, xt, 1e-6f);  // in place
    EXPECT_EQ(rt().read_f32(xt), out) << shape_str(s) << " in place";
    std::vector<double> ref(x.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < HW; ++p) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; ++c) m += x[(n * C + c) * HW + p];
        m /= C;
        for (int64_t c = 0; c < C; ++c) v += std::pow(x[(n * C + c) * HW + p] - m, 2);
        v /= C;
        for (int64_t c = 0; c < C; ++c)
          ref[(n * C + c) * HW + p] = (x[(n * C + c) * HW + p] - m) / std::sqrt(v + 1e-6) * w[c] + b[c];
      }
    EXPECT_TRUE(all_close(out, ref, s, 1e-4, 1e-4)) << shape_str(s);
  }
}

TEST(norm, rejects_mismatched_weight) {
  Tensor x = rt().empty({4, 8}), w = rt().empty({7}), y = rt().empty({4, 8});
  try {
    ops::rms_norm(rt(), x, w, y, 1e-6f);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("with 8 elements"), std::string::npos) << e.what();
  }
}

// The knobs of RuntimeOptions::tuning reach the kernels: rms_norm with 1 and 8 vecs per work-item
// and layer_norm_2d with 4 and 64 pixels per work-group agree with the reference (and the defaults).
TEST(norm, tuning_knobs_are_followed) {
  const int64_t rows = 17, C = 896;
  auto x = random_floats(rows * C, 71, -3.f, 3.f), w = random_floats(C, 72, 0.5f, 1.5f);
  const Shape s{2, 17, 7, 9};
  auto x2 = random_floats(shape_numel(s), 73, -2.f, 4.f), w2 = random_floats(17, 74), b2 = random_floats(17, 75);
  std::vector<float> base_2d;
  for (int knob : {0, 1, 2}) {
    Tuning t;
    if (knob > 0) {
      t.norm_nv = knob == 1 ? 1 : 8;
      t.ln2d_px = knob == 1 ? 4 : 64;
    }
    RuntimeOptions o;
    o.device = std::to_string(rt().device().index);
    o.tuning = t;
    Runtime r(o);
    Tensor xt = r.upload(x, {rows, C}), wt = r.upload(w, {C}), yt = r.empty({rows, C});
    ops::rms_norm(r, xt, wt, yt, 1e-6f);
    EXPECT_TRUE(all_close(r.read_f32(yt), ref_rows(x, w, w, rows, C, 1e-6, 1), {rows, C}, 1e-5, 1e-4))
        << "norm_nv " << t.norm_nv;
    Tensor x2t = r.upload(x2, s), w2t = r.upload(w2, {17}), b2t = r.upload(b2, {17}), y2t = r.empty(s);
    ops::layer_norm_2d(r, x2t, w2t, b2t, y2t, 1e-6f);
    auto out = r.read_f32(y2t);
    if (knob == 0)
      base_2d = out;
    else
      EXPECT_TRUE(all_close(out, to_double(base_2d), s, 1e-5, 1e-5)) << "ln2d_px " << t.ln2d_px;
  }
}

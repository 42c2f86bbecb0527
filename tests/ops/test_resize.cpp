// resize.cl (resize_bicubic_aa, resize_linear) against double-precision references built from the
// PyTorch formulas (model-spec §5): full separable weight matrices for the antialiased bicubic, the
// half-pixel source index for linear. The table-driven cases are the test-tagged descriptors of
// parity/cases/resize.json (parity/op_cases.h), shared with the bench and the golden writer; the
// cases after them are the errors, and the check that the descriptors agree with the committed goldens.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "harness/harness.h"
#include "parity/golden.h"
#include "parity/op_cases.h"
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

void check_bicubic(const Shape& s, int64_t oh, int64_t ow, uint32_t seed, double atol, double rtol) {
  auto x = random_floats(shape_numel(s), seed, -2.f, 2.f);
  Tensor xt = rt().upload(x, s);
  Shape ys{s[0], s[1], oh, ow};
  Guarded y(rt(), ys);
  ops::resize_bicubic_aa(rt(), xt, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_bicubic_aa(x, s, oh, ow), ys, atol, rtol))
      << shape_str(s) << " -> " << oh << "x" << ow;
}

void check_linear(const Shape& s, int64_t out, uint32_t seed, double atol, double rtol) {
  auto x = random_floats(shape_numel(s), seed, -2.f, 2.f);
  Tensor xt = rt().upload(x, s);
  Shape ys{s[0], s[1], out};
  Guarded y(rt(), ys);
  ops::resize_linear(rt(), xt, y);
  auto out_v = y.read_f32();
  EXPECT_TRUE(all_close(out_v, ref_linear(x, s[0] * s[1], s[2], out, true), ys, atol, rtol))
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

namespace {

// One descriptor of parity/cases/resize.json. The test groups: bicubic_aa_down (many taps, the whole axis in one
// output, an exact factor 2), bicubic_aa_up (a single input row too), bicubic_aa_mixed_and_identity (up in one axis
// and down in the other, a copy, one pass only), bicubic_aa_bands_and_fallback (one plane split into many bands of
// output rows; an output row needing all 300 rows of t, 25 wide, more than the 24 KiB tile: the two-pass kernels;
// W unchanged with 6500-wide rows: the vertical kernel alone; coordinates kept small, as ATen's fp32 centres drift
// from the double reference at large sizes), SAM's pos_embed [1,768,64,64] (128 channels) and CLIP's position grid
// [1,1024,16,16] to g x g, linear (up, down, identity, a single input, one output) and SAM's rel_pos tables
// [2*64-1, 64] to 2g-1.
void run_resize_case(const OpCase& d) {
  const Shape s = d.get_shape("shape");
  const auto out = d.get_ints("out");
  SCOPED_TRACE(fmt::format("{}: {} {} -> {} tol {}+{}", d.name, d.get_str("mode", ""), shape_str(s), shape_str(out),
                           d.tol.atol, d.tol.rtol));
  if (d.get_str("mode", "") == "linear")
    check_linear(s, out[0], d.seed, d.tol.atol, d.tol.rtol);
  else
    check_bicubic(s, out[0], out[1], d.seed, d.tol.atol, d.tol.rtol);
}

// The descriptors with the test tag, one gtest per descriptor (its sweep's cases run in turn).
std::vector<std::string> test_groups() {
  std::vector<std::string> groups;
  try {
    for (const auto& d : op_cases("resize"))
      if (d.has_tag("test") && std::find(groups.begin(), groups.end(), d.group) == groups.end())
        groups.push_back(d.group);
  } catch (const std::exception&) {
    groups.push_back("unreadable_case_file");  // the test then fails with op_cases' message
  }
  return groups;
}

class ResizeDescriptor : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(ResizeDescriptor, matches_reference) {
  int n = 0;
  for (const auto& d : op_cases("resize"))
    if (d.group == GetParam() && d.has_tag("test")) {
      run_resize_case(d);
      ++n;
    }
  EXPECT_GT(n, 0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(resize, ResizeDescriptor, ::testing::ValuesIn(test_groups()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

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

namespace {
std::string source_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return s ? s : DSOCR_KERNEL_DIR "/..";
}
}  // namespace

// Every golden-tagged descriptor is a committed golden with the same op, shapes, output size and tolerance (the
// file's atol/rtol, or the contract's default when it has none).
TEST(resize, descriptors_match_committed_goldens) {
  int n = 0;
  for (const auto& d : op_cases("resize", "golden")) {
    SCOPED_TRACE(d.name);
    GoldenCase g = read_golden(source_dir() + "/tests/goldens/ops/" + d.name + ".h5");
    const bool linear = d.get_str("mode", "") == "linear";
    const Shape s = d.get_shape("shape");
    const auto out = d.get_ints("out");
    EXPECT_EQ(g.op, linear ? "resize_linear" : "resize_bicubic_aa");
    EXPECT_EQ(shape_str(g.input("x").shape), shape_str(s));
    Shape ys = s;
    if (linear) {
      ys[2] = out[0];
      EXPECT_EQ(g.attr_int("out_len"), out[0]);
    } else {
      ys[2] = out[0], ys[3] = out[1];
      EXPECT_EQ(g.attr_int("out_h"), out[0]);
      EXPECT_EQ(g.attr_int("out_w"), out[1]);
    }
    EXPECT_EQ(shape_str(g.outputs.at("y").shape), shape_str(ys));
    Tolerance t = golden_tolerance(g);
    EXPECT_EQ(t.atol, d.tol.atol);
    EXPECT_EQ(t.rtol, d.tol.rtol);
    ++n;
  }
  EXPECT_EQ(n, 19);
}

// The bench's case (dsocr bench kernels names it <name>_<C>x<H>to<oh>) and a malformed descriptor refused.
TEST(resize, bench_descriptors_and_errors) {
  auto bench = op_cases("resize", "bench");
  ASSERT_EQ(bench.size(), 1u);
  EXPECT_EQ(shape_str(bench[0].get_shape("shape")), "[1,768,64,64]");
  EXPECT_EQ(shape_str(bench[0].small().get_shape("shape")), "[1,64,64,64]");
  auto bad = [](const std::string& fields, const std::string& needle) {
    const std::string text = R"({"op": "resize", "defaults": {"atol": 1, "rtol": 1}, "cases": [)"
                             R"({"name": "a", "tags": ["test"], )" +
                             fields + "}]}";
    expect_error([&] { parse_op_cases(text, "x.json"); }, {needle});
  };
  bad(R"("mode": "linear", "shape": [1, 2, 3, 4], "out": [5])", "mode linear needs shape [N,C,L] and out [out_len]");
  bad(R"("mode": "bicubic_aa", "shape": [1, 2, 3, 4], "out": [5])", "needs shape [N,C,H,W] and out [oh, ow]");
  bad(R"("mode": "nearest", "shape": [1, 2, 3], "out": [5])", "expected one of bicubic_aa, linear");
  bad(R"("mode": "linear", "shape": [1, 2, 3], "out": [0])", "field 'out' = [0]: out of range");
}

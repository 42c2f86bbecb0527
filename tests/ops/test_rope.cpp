// rope.cl (half-rotation / NeoX rotary embedding) against a double-precision reference. The table-driven cases are
// the test-tagged descriptors of parity/cases/rope.json (parity/op_cases.h), shared with the golden writer; the cases
// after them are those a descriptor cannot say (fused heads, the KV-cache append, errors), and the check that the
// descriptors agree with the committed goldens.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <numeric>

#include "harness/harness.h"
#include "runtime/half.h"
#include "parity/golden.h"
#include "parity/op_cases.h"
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

namespace {

// One descriptor of parity/cases/rope.json: x [B,H,N,D] (layout bhnd) or [B,N,H,D] (bnhd) uniform in x_range (seed),
// positions iota from pos_start or uniform in [0, 8191] (seed + 1), out of place (x then untouched) or in place.
void run_rope_case(const OpCase& d) {
  const int64_t B = d.get_int("B"), H = d.get_int("H"), N = d.get_int("N"), D = d.get_int("D");
  const float theta = static_cast<float>(d.get_float("theta", 1e4));
  const std::string layout = d.get_str("layout", "bhnd"), out = d.get_str("out", layout);
  SCOPED_TRACE(fmt::format("{}: [{},{},{},{}] theta {} layout {} out {} tol {}+{}", d.name, B, H, N, D, theta, layout,
                           out, d.tol.atol, d.tol.rtol));
  auto view = [&](Tensor& t, const std::string& l) {
    return l == "bnhd" ? ops::AttnView::bnhd(t) : ops::AttnView::bhnd(t);
  };
  auto shape = [&](const std::string& l) { return l == "bnhd" ? Shape{B, N, H, D} : Shape{B, H, N, D}; };
  const std::vector<double> xr = d.has("x_range") ? d.get_floats("x_range") : std::vector<double>{-1, 1};
  auto x = random_floats(B * H * N * D, d.seed, static_cast<float>(xr[0]), static_cast<float>(xr[1]));
  auto pos = d.get_str("positions", "iota") == "random" ? random_ints(N, d.seed + 1, 0, 8191)
                                                        : iota(N, static_cast<int32_t>(d.get_int("pos_start", 0)));
  Tensor xt = rt().upload(x, shape(layout)), pt = rt().upload(pos, {N});
  auto xv = view(xt, layout), yv = xv;
  std::unique_ptr<Guarded> y;
  if (out != "in_place") {
    y = std::make_unique<Guarded>(rt(), shape(out));
    yv = view(y->tensor(), out);
  }
  if (d.get_str("freqs", "theta") == "table")
    ops::rope(rt(), xv, pt, ops::RopeFreqs::make(rt(), D, theta), yv);
  else
    ops::rope(rt(), xv, pt, theta, yv);
  // cos/sin of angles up to ~8191 rad: fp32 argument reduction of the device's cos/sin (a few ulp of the result)
  // stays far below atol.
  auto got = gather(y ? y->read_f32() : rt().read_f32(xt), yv);
  EXPECT_TRUE(all_close(got, ref_rope(gather(x, xv), B, H, N, D, pos, theta), yv.shape(), d.tol.atol, d.tol.rtol));
  if (y) EXPECT_TRUE(all_close(rt().read_f32(xt), to_double(x), shape(layout), 0, 0)) << "x is untouched";
}

// The descriptors with the test tag, one gtest per descriptor (its sweep's cases run in turn).
std::vector<std::string> test_groups() {
  std::vector<std::string> groups;
  try {
    for (const auto& d : op_cases("rope"))
      if (d.has_tag("test") && std::find(groups.begin(), groups.end(), d.group) == groups.end())
        groups.push_back(d.group);
  } catch (const std::exception&) {
    groups.push_back("unreadable_case_file");  // the test then fails with op_cases' message
  }
  return groups;
}

class RopeDescriptor : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(RopeDescriptor, matches_reference) {
  int n = 0;
  for (const auto& d : op_cases("rope"))
    if (d.group == GetParam() && d.has_tag("test")) {
      run_rope_case(d);
      ++n;
    }
  EXPECT_GT(n, 0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(rope, RopeDescriptor, ::testing::ValuesIn(test_groups()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

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

// rope_kv_append into an f16 or bf16 cache: each stored value is the f32 cache's value rounded to
// nearest even (the host's conversion of runtime/half.h), other rows untouched.
TEST(rope, kv_append_rounds_into_a_16_bit_cache) {
  const int64_t T = 5, Hq = 4, Hkv = 2, D = 64, cap = 9, past = 3, Htot = Hq + 2 * Hkv, KV = Hkv * D;
  auto x = random_floats(T * Htot * D, 121, -300.f, 300.f);
  auto pos = random_ints(T, 122, 0, 8191);
  Tensor pt = rt().upload(pos, {T});
  auto freqs = ops::RopeFreqs::make(rt(), D, 1e4f);
  Tensor q32 = rt().upload(x, {T, Htot * D}), c32 = rt().upload(std::vector<float>(cap * 2 * KV, 0.f), {cap, 2, Hkv, D});
  ops::rope_kv_append(rt(), q32, Hq, Hkv, pt, freqs, c32, past);
  auto want = rt().read_f32(c32);
  for (DType dt : {DType::f16, DType::bf16}) {
    std::vector<uint16_t> init(cap * 2 * KV, 0x1234);
    Tensor qkv = rt().upload(x, {T, Htot * D}), cache = rt().upload(init.data(), {cap, 2, Hkv, D}, dt);
    ops::rope_kv_append(rt(), qkv, Hq, Hkv, pt, freqs, cache, past);
    std::vector<uint16_t> got(init.size());
    rt().read(cache, got.data(), got.size() * 2);
    for (int64_t i = 0; i < cap * 2 * KV; ++i) {
      const bool row = i / (2 * KV) >= past && i / (2 * KV) < past + T;
      const uint16_t w = !row ? 0x1234 : dt == DType::f16 ? f32_to_f16(want[i]) : f32_to_bf16(want[i]);
      ASSERT_EQ(got[i], w) << dtype_name(dt) << " element " << i;
    }
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

namespace {
std::string source_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return s ? s : DSOCR_KERNEL_DIR "/..";
}
}  // namespace

// Every golden-tagged descriptor is a committed golden with the same shapes, theta, positions (iota from pos_start,
// or within [0, 8192)) and tolerance (the file's atol/rtol, or the contract's default when it has none).
TEST(rope, descriptors_match_committed_goldens) {
  int n = 0;
  for (const auto& d : op_cases("rope", "golden")) {
    SCOPED_TRACE(d.name);
    GoldenCase g = read_golden(source_dir() + "/tests/goldens/ops/" + d.name + ".h5");
    EXPECT_EQ(g.op, "rope");
    const int64_t B = d.get_int("B"), H = d.get_int("H"), N = d.get_int("N"), D = d.get_int("D");
    EXPECT_EQ(shape_str(g.input("x").shape), shape_str({B, H, N, D}));
    EXPECT_EQ(shape_str(g.outputs.at("y").shape), shape_str({B, H, N, D}));
    const auto& pos = g.input("positions");
    ASSERT_EQ(shape_str(pos.shape), shape_str({N}));
    for (int64_t i = 0; i < N; ++i) {
      if (d.get_str("positions", "iota") == "iota")
        EXPECT_EQ(pos.i[i], d.get_int("pos_start", 0) + i) << i;
      else
        EXPECT_TRUE(pos.i[i] >= 0 && pos.i[i] < 8192) << i;
    }
    EXPECT_DOUBLE_EQ(g.attr_float("theta"), d.get_float("theta", 1e4));
    Tolerance t = golden_tolerance(g);
    EXPECT_EQ(t.atol, d.tol.atol);
    EXPECT_EQ(t.rtol, d.tol.rtol);
    ++n;
  }
  EXPECT_EQ(n, 5);
}

// A malformed rope descriptor is refused, naming the case and the field.
TEST(rope, descriptor_errors) {
  auto bad = [](const std::string& fields, const std::string& needle) {
    const std::string text = R"({"op": "rope", "defaults": {"atol": 1, "rtol": 1}, "cases": [)"
                             R"({"name": "a", "tags": ["test"], "B": 1, "H": 2, "N": 3, )" +
                             fields + "}]}";
    try {
      parse_op_cases(text, "x.json");
      ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
    } catch (const OpCaseError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  bad(R"("D": 7)", "op case rope/a: field 'D' = 7 is odd");
  bad(R"("D": 8, "positions": "random", "pos_start": 3)", "field 'pos_start' is for positions iota");
  bad(R"("D": 8, "out": "bnhd_in_place")", "field 'out' = \"bnhd_in_place\": expected one of bhnd, bnhd, in_place");
  bad(R"("D": 8, "theta": -1)", "field 'theta' = -1: out of range");
}

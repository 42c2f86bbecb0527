// norm.cl (layer_norm, layer_norm_2d, rms_norm) against double-precision references. The table-driven cases are
// the test-tagged descriptors of parity/cases/layer_norm.json and rms_norm.json (parity/op_cases.h), shared with the
// bench and the golden writer; the cases after them are those a descriptor cannot say (the fused add, errors, the
// tuning knobs), and the checks that the descriptors agree with the committed goldens.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "harness/harness.h"
#include "parity/golden.h"
#include "parity/op_cases.h"
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

namespace {

// ref over [N,C,HW]: layer_norm_2d (over C at each pixel).
std::vector<double> ref_nchw(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                             const Shape& s, double eps) {
  const int64_t N = s[0], C = s[1], HW = s[2] * s[3];
  std::vector<double> ref(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p) {
      double m = 0, v = 0;
      for (int64_t c = 0; c < C; ++c) m += x[(n * C + c) * HW + p];
      m /= C;
      for (int64_t c = 0; c < C; ++c) v += std::pow(x[(n * C + c) * HW + p] - m, 2);
      v /= C;
      for (int64_t c = 0; c < C; ++c)
        ref[(n * C + c) * HW + p] = (x[(n * C + c) * HW + p] - m) / std::sqrt(v + eps) * w[c] + b[c];
    }
  return ref;
}

// One descriptor of parity/cases/layer_norm.json or rms_norm.json: x uniform in x_range (seed), the weight in
// [0.5, 1.5] (seed + 1), the bias in [-1, 1] (seed + 2); rows x C (layout rows), or [N,C,H,W] out of place and in
// place (layout nchw, layer_norm_2d).
void run_norm_case(const OpCase& d) {
  const Shape s = d.get_shape("shape");
  const bool rms = d.op == "rms_norm", nchw = d.get_str("layout", "rows") == "nchw";
  const double eps = d.get_float("eps", 1e-6);
  const int64_t C = nchw ? s[1] : s.back(), rows = shape_numel(s) / C;
  SCOPED_TRACE(
      fmt::format("{}/{}: shape {} eps {} tol {}+{}", d.op, d.name, shape_str(s), eps, d.tol.atol, d.tol.rtol));
  std::vector<double> xr = d.has("x_range") ? d.get_floats("x_range") : std::vector<double>{-1, 1};
  auto x = random_floats(shape_numel(s), d.seed, static_cast<float>(xr[0]), static_cast<float>(xr[1]));
  auto w = random_floats(C, d.seed + 1, 0.5f, 1.5f), b = random_floats(C, d.seed + 2);
  if (d.get_str("weight_dtype", "f32") == "bf16")
    for (auto* v : {&w, &b})
      for (auto& e : *v) e = bf16_to_float(float_to_bf16(e));
  const float feps = static_cast<float>(eps);
  Tensor wt = rt().upload(w, {C}), bt = rt().upload(b, {C});
  if (nchw) {
    Tensor xt = rt().upload(x, s);
    Guarded y(rt(), s);
    ops::layer_norm_2d(rt(), xt, wt, bt, y, feps);
    auto out = y.read_f32();
    ops::layer_norm_2d(rt(), xt, wt, bt, xt, feps);  // in place
    EXPECT_EQ(rt().read_f32(xt), out) << "in place";
    EXPECT_TRUE(all_close(out, ref_nchw(x, w, b, s, eps), s, d.tol.atol, d.tol.rtol));
    return;
  }
  Tensor xt = rt().upload(x, {rows, C});
  Guarded y(rt(), {rows, C});
  if (rms)
    ops::rms_norm(rt(), xt, wt, y, feps);
  else
    ops::layer_norm(rt(), xt, wt, bt, y, feps);
  EXPECT_TRUE(all_close(y.read_f32(), ref_rows(x, w, b, rows, C, eps, rms ? 1 : 0), {rows, C}, d.tol.atol, d.tol.rtol));
}

// The descriptors of op with the test tag, one gtest per descriptor (its sweep's cases run in turn).
std::vector<std::string> test_groups(const std::string& op) {
  std::vector<std::string> groups;
  try {
    for (const auto& d : op_cases(op))
      if (d.has_tag("test") && std::find(groups.begin(), groups.end(), d.group) == groups.end())
        groups.push_back(d.group);
  } catch (const std::exception&) {
    groups.push_back("unreadable_case_file");  // the test then fails with op_cases' message
  }
  return groups;
}

void run_group(const std::string& op, const std::string& group) {
  int n = 0;
  for (const auto& d : op_cases(op))
    if (d.group == group && d.has_tag("test")) {
      run_norm_case(d);
      ++n;
    }
  EXPECT_GT(n, 0) << op << "/" << group;
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (auto& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

// layer_norm rows: C % 4 == 0 (float4) or not (scalar), 1..8 values per work-item, rows not a multiple of the rows
// per work-group, one row, C = 1; C = 2050 (scalar) and 8200 (float4) exceed the register path and take the wide
// kernels. nchw: C = 384 fills the 24 KiB local tile exactly; C = 512 does not fit it (values re-read).
class LayerNormDescriptor : public ::testing::TestWithParam<std::string> {};
class RmsNormDescriptor : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(LayerNormDescriptor, matches_reference) { run_group("layer_norm", GetParam()); }
TEST_P(RmsNormDescriptor, matches_reference) { run_group("rms_norm", GetParam()); }
INSTANTIATE_TEST_SUITE_P(layer_norm, LayerNormDescriptor, ::testing::ValuesIn(test_groups("layer_norm")), param_name);
INSTANTIATE_TEST_SUITE_P(rms_norm, RmsNormDescriptor, ::testing::ValuesIn(test_groups("rms_norm")), param_name);

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

namespace {
std::string source_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return s ? s : DSOCR_KERNEL_DIR "/..";
}

Shape shape_of(const std::map<std::string, HostArray>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? Shape{} : it->second.shape;
}
}  // namespace

// Every golden-tagged norm descriptor is a committed golden with the same op, shapes, eps and tolerance (the file's
// atol/rtol, or the contract's default when it has none), bf16 weights where the descriptor says so.
TEST(norm, descriptors_match_committed_goldens) {
  int n = 0;
  for (const std::string op : {"layer_norm", "rms_norm"})
    for (const auto& d : op_cases(op, "golden")) {
      SCOPED_TRACE(d.name);
      GoldenCase g = read_golden(source_dir() + "/tests/goldens/ops/" + d.name + ".h5");
      const bool nchw = d.get_str("layout", "rows") == "nchw";
      EXPECT_EQ(g.op, nchw ? "layer_norm_2d" : op);
      const Shape s = d.get_shape("shape"), c{nchw ? s[1] : s.back()};
      EXPECT_EQ(shape_str(shape_of(g.inputs, "x")), shape_str(s));
      EXPECT_EQ(shape_str(shape_of(g.outputs, "y")), shape_str(s));
      EXPECT_EQ(shape_str(shape_of(g.weights, "weight")), shape_str(c));
      EXPECT_EQ(g.weights.size(), op == "rms_norm" ? 1u : 2u);
      if (op == "layer_norm") EXPECT_EQ(shape_str(shape_of(g.weights, "bias")), shape_str(c));
      EXPECT_DOUBLE_EQ(g.attr_float("eps"), d.get_float("eps", 1e-6));
      Tolerance t = golden_tolerance(g);
      EXPECT_EQ(t.atol, d.tol.atol);
      EXPECT_EQ(t.rtol, d.tol.rtol);
      const bool bf16 = d.get_str("weight_dtype", "f32") == "bf16";
      for (const auto& [name, a] : g.weights) {
        bool all_bf16 =
            std::all_of(a.f.begin(), a.f.end(), [](float v) { return bf16_to_float(float_to_bf16(v)) == v; });
        if (bf16) EXPECT_TRUE(all_bf16) << name;
      }
      ++n;
    }
  EXPECT_EQ(n, 10);
}

// The bench's cases (dsocr bench kernels names them <name>_<rows>x<C>), with their --small variants.
TEST(norm, bench_descriptors) {
  auto ln = op_cases("layer_norm", "bench"), rms = op_cases("rms_norm", "bench");
  ASSERT_EQ(ln.size(), 1u);
  ASSERT_EQ(rms.size(), 1u);
  EXPECT_EQ(ln[0].name, "layer_norm_sam");
  EXPECT_EQ(shape_str(ln[0].get_shape("shape")), "[4096,768]");
  EXPECT_EQ(shape_str(ln[0].small().get_shape("shape")), "[1024,768]");
  EXPECT_EQ(shape_str(rms[0].small().get_shape("shape")), "[1024,1280]");
  EXPECT_EQ(rms[0].seed, 84u);
}

// A malformed norm descriptor is refused, naming the case and the field.
TEST(norm, descriptor_errors) {
  auto bad = [](const std::string& op, const std::string& fields, const std::string& needle) {
    const std::string text = R"({"op": ")" + op + R"(", "defaults": {"atol": 1, "rtol": 1}, "cases": [)" +
                             R"({"name": "a", "tags": ["test"], )" + fields + "}]}";
    try {
      parse_op_cases(text, "x.json");
      ADD_FAILURE() << "expected an error mentioning '" << needle << "'";
    } catch (const OpCaseError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  bad("rms_norm", R"("eps": 1e-6)", "op case rms_norm/a: field 'shape' is missing");
  bad("rms_norm", R"("shape": [7, 0])", "field 'shape': entry 0 is neither a size >= 1");
  bad("rms_norm", R"("shape": [7, 17], "layout": "nchw")", "unknown field 'layout'");
  bad("layer_norm", R"("shape": [7, 17], "layout": "nchw")", "layout nchw needs [N,C,H,W]");
  bad("layer_norm", R"("shape": [7, 17], "x_range": [1, "2"])",
      "field 'x_range' = [1,\"2\"]: expected an array of numbers");
  bad("layer_norm", R"("shape": [7, 17], "x_range": [2, 1])", "field 'x_range' [2, 1] is empty");
  bad("layer_norm", R"("shape": [7, 17], "eps": 0)", "field 'eps' = 0: out of range");
  bad("layer_norm", R"("shape": [7, 17], "weight_dtype": "f16")", "expected one of f32, bf16");
}

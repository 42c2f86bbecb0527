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
#include "sdpa_test_util.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

enum class Layout { dense, strided };

// One run of the op: a descriptor of parity/cases/sdpa.json, read into the fields run_case uses.
struct Case {
  std::string name;
  int64_t B = 1, H = 4, Hkv = 2, Nq = 7, Nk = 7, D = 64;
  bool causal = false;
  int64_t causal_prefix = 0;
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
  c.causal_prefix = d.get_int("causal_prefix", 0);
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
  p.causal_prefix = c.causal_prefix;
  p.algo = c.algo;
  p.kv_splits = c.splits;
  RefBias rb;
  rb.prefix = c.causal_prefix;
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

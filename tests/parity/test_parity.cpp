// dsocr parity: golden files written here with the HDF5 C API (valid, corrupt, truncated,
// wrong version/format/op, missing datasets, wrong shapes) run through run_parity(); broken copies
// of the committed DeepSeek-OCR-2 encoder goldens (contract §7).
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <tuple>

#include "harness/harness.h"
#include "parity/parity.h"

using namespace dsocr;
using namespace dsocr::test;
namespace fs = std::filesystem;

namespace {

struct H5Writer {
  hid_t f;
  // Creates the file, or opens an existing one to add attributes (append).
  explicit H5Writer(const std::string& path, bool append = false) {
    f = append ? H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
               : H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  }
  ~H5Writer() { H5Fclose(f); }
  void attr_str(const char* name, const std::string& v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = v.c_str();
    H5Awrite(a, t, &p);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
  }
  template <typename T>
  void attr_num(const char* name, T v, hid_t type) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, &v);
    H5Aclose(a);
    H5Sclose(s);
  }
  void dataset(const std::string& path, const std::vector<float>& v, const Shape& shape) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(f, path.c_str(), H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(lcpl);
  }
};

struct LinearCase {
  int rows = 7, in = 17, out = 5;
  std::vector<float> x, w, b, y;
  LinearCase() {
    x = random_floats(rows * in, 1);
    w = random_floats(out * in, 2);
    b = random_floats(out, 3);
    y.resize(rows * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        double s = b[o];
        for (int i = 0; i < in; ++i) s += double(x[r * in + i]) * w[o * in + i];
        y[r * out + o] = static_cast<float>(s);
      }
  }
  // Writes the case; the knobs break one thing each.
  void write(const std::string& path, const std::string& format = "dsocr-golden", int version = 1,
             const std::string& op = "linear", bool with_weight = true, int x_in = -1, float y_bias = 0.f) const {
    H5Writer h(path);
    h.attr_str("format", format);
    h.attr_num<int64_t>("version", version, H5T_NATIVE_INT64);
    h.attr_str("op", op);
    h.attr_num<int64_t>("seed", 1, H5T_NATIVE_INT64);
    h.attr_str("source", "tests/ops/test_parity.cpp");
    int xi = x_in < 0 ? in : x_in;
    h.dataset("/inputs/x", random_floats(rows * xi, 1), {rows, xi});
    if (with_weight) h.dataset("/weights/weight", w, {out, in});
    h.dataset("/weights/bias", b, {out});
    std::vector<float> yy = y;
    for (auto& v : yy) v += y_bias;
    h.dataset("/outputs/y", yy, {rows, out});
  }
};

class Parity : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / fmt::format("dsocr_parity_{}", ::getpid());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string p(const std::string& name) const { return (dir / name).string(); }
  ParityTotals run(const std::vector<std::string>& files) {
    ::testing::internal::CaptureStdout();
    ParityTotals t = run_parity(rt(), files, {});
    last_output = ::testing::internal::GetCapturedStdout();
    return t;
  }
  std::string last_output;
};

}  // namespace

TEST_F(Parity, valid_case_passes) {
  LinearCase c;
  c.write(p("ok.h5"));
  auto t = run({p("ok.h5")});
  EXPECT_EQ(t.passed, 1) << last_output;
  EXPECT_EQ(t.exit_code(), 0) << last_output;
  EXPECT_NE(last_output.find("ok.h5  y  [7,5]"), std::string::npos) << last_output;
  EXPECT_NE(last_output.find("1 passed, 0 failed"), std::string::npos) << last_output;
}

TEST_F(Parity, wrong_expected_values_fail_with_exit_1) {
  LinearCase c;
  c.write(p("off.h5"), "dsocr-golden", 1, "linear", true, -1, 0.01f);
  auto t = run({p("off.h5")});
  EXPECT_EQ(t.failed, 1);
  EXPECT_EQ(t.exit_code(), 1);
  EXPECT_NE(last_output.find("FAIL"), std::string::npos) << last_output;
  EXPECT_NE(last_output.find("first at index"), std::string::npos) << last_output;
}

TEST_F(Parity, malformed_files_exit_2_and_others_still_run) {
  LinearCase c;
  c.write(p("good.h5"));
  c.write(p("version.h5"), "dsocr-golden", 2);
  c.write(p("format.h5"), "something-else");
  c.write(p("unknown_op.h5"), "dsocr-golden", 1, "frobnicate");
  c.write(p("missing.h5"), "dsocr-golden", 1, "linear", false);
  c.write(p("shape.h5"), "dsocr-golden", 1, "linear", true, 9);
  c.write(p("no_checkpoint.h5"), "dsocr-golden", 1, "model_generate");
  std::ofstream(p("garbage.h5")) << "this is not an HDF5 file at all";
  {  // truncated: the first half of a valid file
    std::ifstream in(p("good.h5"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(p("truncated.h5"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto t = run({p("version.h5"), p("format.h5"), p("unknown_op.h5"), p("missing.h5"), p("shape.h5"), p("garbage.h5"),
                p("truncated.h5"), p("nonexistent.h5"), p("no_checkpoint.h5"), p("good.h5")});
  EXPECT_EQ(t.passed, 1) << last_output;
  EXPECT_EQ(t.unrunnable, 9) << last_output;
  EXPECT_EQ(t.exit_code(), 2);
  for (const char* expect :
       {"golden schema version 2 is not supported", "format must be 'dsocr-golden'", "unknown op 'frobnicate'",
        "missing dataset /weights/weight", "must end in in_features 17", "not an HDF5 file", "no such file",
        "root attribute checkpoint is missing", "good.h5  y  [7,5]", "1 passed, 9 failed"})
    EXPECT_NE(last_output.find(expect), std::string::npos) << "missing '" << expect << "' in:\n" << last_output;
  EXPECT_NE(last_output.find("truncated.h5  -  -  cannot run"), std::string::npos) << last_output;
}

namespace {

std::string source_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return s ? s : DSOCR_KERNEL_DIR "/..";
}

// A copy of a committed model golden whose checkpoint attribute points at the committed
// checkpoint by absolute path, with image_token_id removed (value < 0) or set to `value`.
void copy_with_image_token_id(const std::string& from, const std::string& to, int64_t value) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  hid_t f = H5Fopen(to.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Adelete(f, "checkpoint"), 0);
  ASSERT_GE(H5Adelete(f, "image_token_id"), 0);
  H5Fclose(f);
  H5Writer h(to, true);
  h.attr_str("checkpoint", fs::absolute(source_dir() + "/tests/goldens/tiny-ckpt").string());
  if (value >= 0) h.attr_num<int64_t>("image_token_id", value, H5T_NATIVE_INT64);
}

}  // namespace

// The contract never defined image_token_id: a case written by another tool without it takes
// the id of <image> from its checkpoint's tokenizer; when present, the attribute must agree.
TEST_F(Parity, image_token_id_comes_from_the_checkpoint_tokenizer) {
  const std::string src = source_dir() + "/tests/goldens/model/model_logits_image_tiny.h5";
  copy_with_image_token_id(src, p("no_attr.h5"), -1);
  copy_with_image_token_id(src, p("wrong_attr.h5"), 7);
  auto t = run({p("no_attr.h5"), p("wrong_attr.h5")});
  EXPECT_EQ(t.failed, 0) << last_output;
  EXPECT_GT(t.passed, 1) << last_output;  // logits and every tap of the case without the attribute
  EXPECT_EQ(t.unrunnable, 1) << last_output;
  EXPECT_NE(last_output.find("image_token_id = 7 disagrees with the checkpoint's tokenizer, where <image> is"),
            std::string::npos)
      << last_output;
}

namespace {

// An sdpa case with DeepSeek-OCR-2's mask as the contract's rule (attrs causal = 1,
// causal_prefix = N): expected output from a double-precision reference of that rule, or of the
// plain causal mask (wrong for this case) when prefix_in_reference is false.
void write_sdpa_prefix_case(const std::string& path, int64_t causal, int64_t prefix, bool prefix_in_reference) {
  const int64_t H = 2, T = 10, N = 5, D = 8;
  auto q = random_floats(H * T * D, 31), k = random_floats(H * T * D, 32), v = random_floats(H * T * D, 33);
  const double scale = 0.35;
  std::vector<float> out(H * T * D, 0.f);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> s(T);
      double m = -1e300, l = 0;
      for (int64_t j = 0; j < T; ++j) {
        const bool visible = j <= i || (prefix_in_reference && j < N);
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += double(q[(h * T + i) * D + d]) * k[(h * T + j) * D + d];
        s[j] = visible ? acc * scale : -1e300;
        m = std::max(m, s[j]);
      }
      for (int64_t j = 0; j < T; ++j) l += s[j] > -1e299 ? std::exp(s[j] - m) : 0.0;
      for (int64_t d = 0; d < D; ++d) {
        double o = 0;
        for (int64_t j = 0; j < T; ++j)
          if (s[j] > -1e299) o += std::exp(s[j] - m) / l * v[(h * T + j) * D + d];
        out[(h * T + i) * D + d] = static_cast<float>(o);
      }
    }
  H5Writer w(path);
  w.attr_str("format", "dsocr-golden");
  w.attr_num<int64_t>("version", 1, H5T_NATIVE_INT64);
  w.attr_str("op", "sdpa");
  w.attr_num<int64_t>("seed", 31, H5T_NATIVE_INT64);
  w.attr_str("source", "tests/parity/test_parity.cpp");
  w.attr_num<double>("scale", scale, H5T_NATIVE_DOUBLE);
  w.attr_num<int64_t>("causal", causal, H5T_NATIVE_INT64);
  w.attr_num<int64_t>("causal_prefix", prefix, H5T_NATIVE_INT64);
  w.dataset("/inputs/q", q, {1, H, T, D});
  w.dataset("/inputs/k", k, {1, H, T, D});
  w.dataset("/inputs/v", v, {1, H, T, D});
  w.dataset("/outputs/out", out, {1, H, T, D});
}

}  // namespace

TEST_F(Parity, sdpa_causal_prefix_attribute) {
  write_sdpa_prefix_case(p("prefix.h5"), 1, 5, true);
  auto t = run({p("prefix.h5")});
  EXPECT_EQ(t.passed, 1) << last_output;
  EXPECT_EQ(t.exit_code(), 0) << last_output;
  // the plain causal mask's output is not this case's: the prefix was applied
  write_sdpa_prefix_case(p("plain.h5"), 1, 5, false);
  t = run({p("plain.h5")});
  EXPECT_EQ(t.failed, 1) << last_output;
  // a prefix without the causal rule cannot be run
  write_sdpa_prefix_case(p("nocausal.h5"), 0, 5, true);
  t = run({p("nocausal.h5")});
  EXPECT_EQ(t.exit_code(), 2) << last_output;
  EXPECT_NE(last_output.find("attrs/causal_prefix 5 must be in 0..Nk = 10 and needs causal = 1"), std::string::npos)
      << last_output;
}

namespace {

// A copy of a committed DeepSeek-OCR-2 golden (contract §7) with one thing broken by `edit`.
void broken_copy(const std::string& golden, const std::string& to, const std::function<void(H5Writer&)>& edit) {
  fs::copy_file(source_dir() + "/tests/goldens/model/" + golden, to, fs::copy_options::overwrite_existing);
  H5Writer h(to, true);
  ASSERT_GE(h.f, 0) << to;
  edit(h);
}

std::function<void(H5Writer&)> drop(const std::string& dataset) {
  return [dataset](H5Writer& h) { ASSERT_GE(H5Ldelete(h.f, dataset.c_str(), H5P_DEFAULT), 0) << dataset; };
}

std::function<void(H5Writer&)> replace(const std::string& dataset, const Shape& shape) {
  return [dataset, shape](H5Writer& h) {
    ASSERT_GE(H5Ldelete(h.f, dataset.c_str(), H5P_DEFAULT), 0) << dataset;
    h.dataset(dataset, random_floats(static_cast<size_t>(shape_numel(shape)), 5), shape);
  };
}

std::function<void(H5Writer&)> set_int_attr(const char* name, int64_t v) {
  return [name, v](H5Writer& h) {
    if (H5Aexists(h.f, name) > 0) {
      ASSERT_GE(H5Adelete(h.f, name), 0);
    }
    h.attr_num<int64_t>(name, v, H5T_NATIVE_INT64);
  };
}

}  // namespace

// Malformed qwen2_encoder_layer / qwen2_encoder cases (a missing dataset, a wrong shape, structure
// attributes the weights contradict) are reported as unrunnable with the dataset or attribute
// named, never a crash; the intact copies still run and pass.
TEST_F(Parity, malformed_qwen2_cases_exit_2_and_others_still_run) {
  const std::string layer = "qwen2_encoder_layer_tiny_global_l1.h5", enc = "qwen2_encoder_tiny_global.h5";
  broken_copy(layer, p("layer_ok.h5"), [](H5Writer&) {});
  broken_copy(enc, p("enc_ok.h5"), [](H5Writer&) {});
  const std::vector<std::tuple<std::string, std::string, std::function<void(H5Writer&)>, std::string>> broken = {
      {layer, "l_no_bias.h5", drop("/weights/self_attn.q_proj.bias"), "missing dataset /weights/self_attn.q_proj.bias"},
      {layer, "l_no_x.h5", drop("/inputs/x"), "missing dataset /inputs/x"},
      {layer, "l_positions.h5", replace("/inputs/positions", {5}),
       "dataset inputs/positions has shape [5], expected [512]"},
      {layer, "l_down.h5", replace("/weights/mlp.down_proj.weight", {48, 7}),
       "/weights/mlp.down_proj.weight has shape [48,7], expected [48,96]"},
      {layer, "l_heads.h5", set_int_attr("num_heads", 5), "num_heads 5 must divide the width 48"},
      {layer, "l_kv.h5", replace("/weights/self_attn.k_proj.weight", {12, 48}), "has 12 rows"},
      {layer, "l_prefix.h5", set_int_attr("causal_prefix", 100), "causal_prefix 100 with 512 tokens"},
      {enc, "e_no_query.h5", drop("/weights/query_1024.weight"), "missing dataset /weights/query_1024.weight"},
      {enc, "e_no_norm.h5", drop("/weights/model.model.norm.weight"),
       "missing dataset /weights/model.model.norm.weight"},
      {enc, "e_layer2.h5", replace("/weights/model.model.layers.2.self_attn.o_proj.weight", {48, 40}),
       "/weights/model.model.layers.2.self_attn.o_proj.weight has shape [48,40], expected [48,48]"},
      {enc, "e_tokens.h5", replace("/inputs/sam_features", {1, 48, 10, 10}), "N = h*w = 100 tokens"},
      {enc, "e_width.h5", replace("/inputs/sam_features", {1, 36, 16, 16}),
       "weights/model.model.layers.0.self_attn.k_proj.weight has shape [16,48], expected [*,36]"},
      {enc, "e_rank.h5", replace("/inputs/sam_features", {256, 48}), "dataset inputs/sam_features has shape [256,48]"},
  };
  std::vector<std::string> files;
  for (auto& [from, name, edit, msg] : broken) {
    broken_copy(from, p(name), edit);
    files.push_back(p(name));
  }
  files.push_back(p("layer_ok.h5"));
  files.push_back(p("enc_ok.h5"));
  auto t = run(files);
  EXPECT_EQ(t.failed, 0) << last_output;
  EXPECT_EQ(t.unrunnable, static_cast<int>(broken.size())) << last_output;
  EXPECT_EQ(t.passed, 1 + 4) << last_output;  // the layer's y; the encoder's y and its 3 layer taps
  EXPECT_EQ(t.exit_code(), 2);
  for (auto& [from, name, edit, msg] : broken) {
    const size_t at = last_output.find(name + "  -  -  ");
    ASSERT_NE(at, std::string::npos) << name << " not reported in:\n" << last_output;
    const std::string line = last_output.substr(at, last_output.find('\n', at) - at);
    EXPECT_NE(line.find(msg), std::string::npos) << "missing '" << msg << "' in: " << line;
  }
  EXPECT_NE(last_output.find("layer_ok.h5  y  [1,512,48]"), std::string::npos) << last_output;
  EXPECT_NE(last_output.find("enc_ok.h5  taps/layers.2  [1,512,48]"), std::string::npos) << last_output;
}

// Weight storages (model/weights.h) and converted checkpoints (model/convert.h) on the tiny
// checkpoint of tests/goldens/tiny-ckpt: which matrices each storage keeps in which dtype, the
// logits against f32, a value beyond half's range (kept in bf16, with a note), dsocr convert's
// files loading to the same model as quantising on load, and malformed quantised tensors.
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/harness.h"
#include "model/convert.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "runtime/quant.h"

using namespace dsocr;
using namespace dsocr::test;
namespace fs = std::filesystem;

namespace {

std::string ckpt_dir() {
  const char* src = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(src ? src : DSOCR_KERNEL_DIR "/..") + "/tests/goldens/tiny-ckpt";
}

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("dsocr-test-weights-{}-{}", ::getpid(), name);
  fs::remove_all(p);
  return p;
}

// Logits [T, vocab] of a fixed prompt (no image) through the language model.
std::vector<float> logits(const OcrModel& m) {
  std::vector<int32_t> ids = {0, 5, 17, 300, 42, 9, 1000, 77, 12, 64, 3};
  KvCache cache = make_kv_cache(rt(), m.cfg.lm, static_cast<int64_t>(ids.size()));
  Tensor x = lm_embed(rt(), m.lm, ids, nullptr, -1);
  return rt().read_f32(lm_forward(rt(), m.lm, x, cache, false));
}

double max_rel(const std::vector<float>& a, const std::vector<float>& ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - ref[i]));
    r = std::max(r, std::fabs(double(ref[i])));
  }
  return d / r;
}

const std::vector<float>& f32_logits() {
  static std::vector<float> l = logits(load_model(rt(), ckpt_dir(), WeightStorage::f32));
  return l;
}

// A copy of the tiny checkpoint with element 0 of `tensor` (bf16) set to `bits`.
fs::path patched_copy(const std::string& tensor, uint16_t bits) {
  fs::path dir = scratch("patched");
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(ckpt_dir())) fs::copy_file(e.path(), dir / e.path().filename());
  fs::path file;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") file = e.path();
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, ' ');
  f.read(header.data(), static_cast<std::streamsize>(n));
  auto j = nlohmann::json::parse(header);
  const uint64_t off = 8 + n + j.at(tensor).at("data_offsets").at(0).get<uint64_t>();
  f.seekp(static_cast<std::streamoff>(off));
  f.write(reinterpret_cast<const char*>(&bits), 2);
  return dir;
}

}  // namespace

TEST(weights, storage_names) {
  for (const char* n : {"bf16", "fp16", "int8", "int4", "f32"})
    EXPECT_STREQ(weight_storage_name(weight_storage_from_string(n)), n);
  EXPECT_EQ(weight_storage_from_string("compact"), WeightStorage::bf16);
  expect_error_containing([] { weight_storage_from_string("int3"); }, "use bf16 (as stored; alias compact), fp16");
}

TEST(weights, each_storage_keeps_its_matrices_and_stays_close_to_f32) {
  struct Want {
    WeightStorage s;
    DType linear, other;
    double tol;
  };
  for (Want w : {Want{WeightStorage::bf16, DType::bf16, DType::bf16, 1e-6},
                 Want{WeightStorage::fp16, DType::f16, DType::f16, 1e-3},
                 Want{WeightStorage::int8, DType::q8, DType::bf16, 3e-2},
                 Want{WeightStorage::int4, DType::q4, DType::bf16, 3e-1}}) {
    SCOPED_TRACE(weight_storage_name(w.s));
    OcrModel m = load_model(rt(), ckpt_dir(), w.s);
    EXPECT_TRUE(m.load_notes.empty()) << m.load_notes.front();
    const LmLayer& dense = m.lm.layers.at(0);
    const LmLayer& moe = m.lm.layers.at(1);
    ASSERT_FALSE(dense.moe);
    ASSERT_TRUE(moe.moe);
    for (const Tensor* t : {&dense.qkv_w, &dense.o_w, &dense.mlp_gate_up, &dense.mlp_down, &moe.experts.gate_up,
                            &moe.experts.down, &moe.shared_gate_up, &moe.shared_down})
      EXPECT_EQ(t->dtype, w.linear) << dtype_name(t->dtype) << " " << shape_str(t->shape);
    for (const Tensor* t : std::initializer_list<const Tensor*>{&m.lm.embed, &m.lm.lm_head, &moe.router_w, &m.vision.proj_w})
      EXPECT_EQ(t->dtype, w.other) << dtype_name(t->dtype) << " " << shape_str(t->shape);
    const double err = max_rel(logits(m), f32_logits());
    EXPECT_LE(err, w.tol);
    if (w.s == WeightStorage::int8 || w.s == WeightStorage::int4) {
      EXPECT_GT(err, 1e-5) << "quantisation had no effect";
    }
  }
}

TEST(weights, a_value_beyond_half_stays_bf16_with_a_note) {
  const std::string name = "model.layers.0.self_attn.o_proj.weight";
  fs::path dir = patched_copy(name, 0x47c3);  // 99840 in bf16: beyond fp16's 65504
  OcrModel h = load_model(rt(), dir.string(), WeightStorage::fp16);
  ASSERT_EQ(h.load_notes.size(), 1u);
  EXPECT_NE(h.load_notes[0].find(name + " kept as BF16: 99840 is beyond fp16's range"), std::string::npos)
      << h.load_notes[0];
  EXPECT_EQ(h.lm.layers[0].o_w.dtype, DType::bf16);
  EXPECT_EQ(h.lm.layers[0].qkv_w.dtype, DType::f16);
  OcrModel q = load_model(rt(), dir.string(), WeightStorage::int4);
  ASSERT_EQ(q.load_notes.size(), 1u);
  EXPECT_NE(q.load_notes[0].find(name + " kept as BF16: not quantisable"), std::string::npos) << q.load_notes[0];
  EXPECT_EQ(q.lm.layers[0].o_w.dtype, DType::bf16);
  EXPECT_EQ(q.lm.layers[0].qkv_w.dtype, DType::q4);
  fs::remove_all(dir);
}

TEST(weights, converted_checkpoint_loads_as_quantising_on_load) {
  for (WeightStorage s : {WeightStorage::int8, WeightStorage::int4, WeightStorage::fp16}) {
    SCOPED_TRACE(weight_storage_name(s));
    fs::path dst = scratch("converted");
    ConvertReport r = convert_checkpoint(ckpt_dir(), dst.string(), s);
    EXPECT_TRUE(r.notes.empty());
    EXPECT_GT(r.converted, 0);
    if (s == WeightStorage::fp16) {
      EXPECT_EQ(r.bytes_out, r.bytes_in);  // bf16 -> f16: the same two bytes
    } else {
      EXPECT_LT(r.bytes_out, r.bytes_in);
    }
    EXPECT_TRUE(fs::exists(dst / "tokenizer.json"));
    auto cfg = nlohmann::json::parse(std::ifstream(dst / "config.json"));
    EXPECT_EQ(cfg.contains("quantization"), s != WeightStorage::fp16);
    // The converted file under the default storage gives the same logits, bit for bit, as the
    // original quantised (or converted) while loading.
    OcrModel onload = load_model(rt(), ckpt_dir(), s);
    OcrModel fromfile = load_model(rt(), dst.string(), WeightStorage::bf16);
    EXPECT_EQ(fromfile.lm.layers[0].o_w.dtype, onload.lm.layers[0].o_w.dtype);
    EXPECT_EQ(logits(fromfile), logits(onload));
    // f32 storage widens the quantised matrices: the same values, in fp32 arithmetic.
    if (s != WeightStorage::fp16) {
      OcrModel wide = load_model(rt(), dst.string(), WeightStorage::f32);
      EXPECT_EQ(wide.lm.layers[0].o_w.dtype, DType::f32);
      EXPECT_LE(max_rel(logits(wide), logits(onload)), 1e-4);
    }
    expect_error_containing([&] { convert_checkpoint(ckpt_dir(), dst.string(), s); }, "already holds a checkpoint");
    fs::remove_all(dst);
  }
  expect_error_containing([&] { convert_checkpoint(ckpt_dir(), scratch("x").string(), WeightStorage::bf16); },
                          "--weights bf16 is not a conversion");
}

TEST(weights, lm_linear_names) {
  for (const char* n : {"model.layers.0.self_attn.q_proj.weight", "model.layers.11.self_attn.o_proj.weight",
                        "model.layers.0.mlp.gate_proj.weight", "model.layers.3.mlp.shared_experts.down_proj.weight",
                        "model.layers.3.mlp.experts.63.up_proj.weight"})
    EXPECT_TRUE(lm_linear_name(n)) << n;
  for (const char* n : {"model.layers.3.mlp.gate.weight", "lm_head.weight", "model.embed_tokens.weight",
                        "model.sam_model.blocks.0.attn.qkv.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.0.self_attn.q_proj.bias"})
    EXPECT_FALSE(lm_linear_name(n)) << n;
}

TEST(weights, malformed_quantised_tensors_are_named) {
  // a.weight: 4 x 32 int4 codes as U32 [4, 4]; scales [4, 1]; biases of the wrong shape.
  fs::path dir = scratch("malformed");
  fs::create_directories(dir);
  auto write = [&](const std::string& biases_shape, int64_t biases_n) {
    nlohmann::ordered_json h;
    uint64_t off = 0;
    auto add = [&](const std::string& n, const std::string& dt, const std::vector<int64_t>& shape, uint64_t bytes) {
      h[n] = {{"dtype", dt}, {"shape", shape}, {"data_offsets", {off, off + bytes}}};
      off += bytes;
    };
    add("a.weight", "U32", {4, 4}, 64);
    add("a.scales", "F16", {4, 1}, 8);
    add("a.biases", "F16", biases_shape == "4x1" ? std::vector<int64_t>{4, 1} : std::vector<int64_t>{4, 2},
        static_cast<uint64_t>(biases_n * 2));
    std::string hs = h.dump();
    std::ofstream f(dir / "model.safetensors", std::ios::binary | std::ios::trunc);
    uint64_t n = hs.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << hs;
    std::vector<uint8_t> data(off, 0);
    for (int r = 0; r < 4; ++r) {
      const uint16_t one = 0x3c00;  // scale 1.0; codes 0; offsets 0 (and row 0's codes 0x21: 1, 2)
      std::memcpy(&data[64 + 2 * r], &one, 2);
    }
    data[0] = 0x21;
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  };
  write("4x1", 4);
  {
    WeightStore st = WeightStore::open_dir(dir.string());
    StoreWeights w(st, "", WeightStorage::f32);
    std::vector<float> v = rt().read_f32(w.load_matrix(rt(), "a.weight", {4, 32}));
    EXPECT_EQ(v[0], 1.f);
    EXPECT_EQ(v[1], 2.f);
    EXPECT_EQ(v[2], 0.f);
    StoreWeights q(st, "", WeightStorage::bf16);
    EXPECT_EQ(q.load_matrix(rt(), "a.weight", {4, 32}).dtype, DType::q4);
    expect_error_containing([&] { q.load_matrix(rt(), "a.weight", {4, 64}); }, "for the config's shape [4,64]");
  }
  write("4x2", 8);
  {
    WeightStore st = WeightStore::open_dir(dir.string());
    StoreWeights q(st, "", WeightStorage::bf16);
    expect_error_containing([&] { q.load_matrix(rt(), "a.weight", {4, 32}); },
                            "tensor a.weight is quantised (U32 [4,4], scales F16 [4,1], biases F16 [4,2])");
  }
  fs::remove_all(dir);
}

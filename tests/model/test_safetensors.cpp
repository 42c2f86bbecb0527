// model/safetensors: valid files in every float dtype, sharded index, and hostile headers.
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/harness.h"
#include "model/safetensors.h"

using namespace dsocr;
using namespace dsocr::test;
namespace fs = std::filesystem;

namespace {

// Writes header JSON + data bytes as a safetensors file (header length may be forced).
void write_raw(const std::string& path, const std::string& header, const std::string& data, int64_t force_len = -1) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = force_len >= 0 ? static_cast<uint64_t>(force_len) : header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

std::string bytes_of(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

class Safetensors : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() /
          fmt::format("dsocr_st_{}_{}", ::getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string p(const std::string& n) { return (dir / n).string(); }
  // Expects opening to throw an Error whose text contains `needle`.
  void expect_error(const std::string& header, const std::string& data, const std::string& needle, int64_t len = -1) {
    write_raw(p("bad.safetensors"), header, data, len);
    try {
      SafetensorsFile f(p("bad.safetensors"));
      ADD_FAILURE() << "no error for header " << header;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "got: " << e.what();
    }
  }
};

}  // namespace

TEST_F(Safetensors, reads_f32_f16_bf16_and_uploads) {
  auto v = random_floats(12, 5);
  std::vector<uint16_t> h(12), b(12);
  std::vector<double> ref_h(12), ref_b(12);
  for (int k = 0; k < 12; ++k) {
    h[k] = float_to_half(v[k]);
    ref_h[k] = half_to_float(h[k]);
    b[k] = to_bf16(v[k]);
    uint32_t x = static_cast<uint32_t>(b[k]) << 16;
    float f;
    std::memcpy(&f, &x, 4);
    ref_b[k] = f;
  }
  nlohmann::json hdr = {{"__metadata__", {{"format", "pt"}}},
                        {"a.f32", {{"dtype", "F32"}, {"shape", {3, 4}}, {"data_offsets", {0, 48}}}},
                        {"b.f16", {{"dtype", "F16"}, {"shape", {12}}, {"data_offsets", {48, 72}}}},
                        {"c.bf16", {{"dtype", "BF16"}, {"shape", {2, 6}}, {"data_offsets", {72, 96}}}},
                        {"empty", {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {96, 96}}}}};
  write_raw(p("ok.safetensors"), hdr.dump(), bytes_of(v.data(), 48) + bytes_of(h.data(), 24) + bytes_of(b.data(), 24));
  WeightStore ws = WeightStore::open_dir(dir.string());
  EXPECT_EQ(ws.size(), 4u);
  EXPECT_EQ(ws.get("c.bf16").shape, (Shape{2, 6}));
  EXPECT_TRUE(all_close(rt().read_f32(ws.upload(rt(), "a.f32", {3, 4})), to_double(v), {3, 4}, 0, 0));
  EXPECT_TRUE(all_close(rt().read_f32(ws.upload(rt(), "b.f16", {12})), ref_h, {12}, 0, 0));
  EXPECT_TRUE(all_close(rt().read_f32(ws.upload(rt(), "c.bf16", {2, 6})), ref_b, {2, 6}, 0, 0));
  Tensor as_half = ws.upload(rt(), "c.bf16", {2, 6}, DType::f16);
  EXPECT_EQ(as_half.dtype, DType::f16);
  try {
    ws.get("a.f32", {4, 3});
    ADD_FAILURE() << "shape mismatch not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.f32 has shape [3,4], but the config implies [4,3]"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ws.get("no.such.tensor"), Error);
}

TEST_F(Safetensors, hostile_headers_are_rejected_with_the_tensor_named) {
  std::string data(64, '\0');
  expect_error("", "", "header length 1099511627776 exceeds", int64_t(1) << 40);
  expect_error("{\"a\":1}", data, "header length 1000 exceeds", 1000);
  expect_error("not json at all", data, "not a JSON object");
  expect_error(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", data, "tensor w: unknown dtype \"Q4\"");
  expect_error(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data, "tensor w: shape [-2]");
  expect_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9999]}})", data,
               "tensor w: data_offsets [0, 9999] outside");
  expect_error(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data,
               "tensor w: data_offsets [8, 0] outside");
  expect_error(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data,
               "span 8 bytes but shape [3] of F32 needs 12");
  expect_error(
      R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
      data, "overlap");
  expect_error(R"({"w":{"dtype":"F32","shape":[4]}})", data, "tensor w: entry must have dtype, shape and data_offsets");
  expect_error(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data,
               "absurdly large");
  // numel * 4 = 2^64 wraps to 0 = the span: refused before anything is allocated for 2^62 floats
  // (found by fuzz/fuzz_safetensors.cpp; fuzz/regressions/safetensors/numel_wraps_to_zero_bytes.safetensors)
  expect_error(R"({"w":{"dtype":"F32","shape":[1099511627776,4194304],"data_offsets":[0,0]}})", data,
               "tensor w: shape [1099511627776,4194304] of F32 needs more bytes than the data region's 64");
  write_raw(p("tiny.safetensors"), "", "", 0);
  std::ofstream(p("short.safetensors")) << "abc";
  EXPECT_THROW(SafetensorsFile(p("short.safetensors")), Error);
  EXPECT_THROW(SafetensorsFile(p("missing.safetensors")), Error);
}

TEST_F(Safetensors, sharded_index) {
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  write_raw(p("s1.safetensors"), R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", bytes_of(a.data(), 8));
  write_raw(p("s2.safetensors"), R"({"y":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", bytes_of(b.data(), 12));
  std::ofstream(p("model.safetensors.index.json"))
      << R"({"metadata":{"total_size":20},"weight_map":{"x":"s1.safetensors","y":"s2.safetensors"}})";
  WeightStore ws = WeightStore::open_dir(dir.string());
  EXPECT_EQ(ws.size(), 2u);
  EXPECT_EQ(WeightStore::to_f32(ws.get("y"))[2], 5.f);
  std::ofstream(p("model.safetensors.index.json")) << R"({"weight_map":{"x":"s1.safetensors","y":"s3.safetensors"}})";
  try {
    WeightStore::open_dir(dir.string());
    ADD_FAILURE() << "missing shard not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s3.safetensors"), std::string::npos) << e.what();
  }
  std::ofstream(p("model.safetensors.index.json")) << R"({"weight_map":{"x":"../etc/passwd"}})";
  EXPECT_THROW(WeightStore::open_dir(dir.string()), Error);
}

// model/safetensors: valid files in every float dtype, sharded index, and hostile headers; the
// fp16/bf16 <-> fp32 converters of runtime/half.h against hand-worked bit patterns.
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/harness.h"
#include "model/safetensors.h"
#include "runtime/half.h"

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
    h[k] = f32_to_f16(v[k]);
    ref_h[k] = f16_to_f32(h[k]);
    b[k] = f32_to_bf16(v[k]);
    ref_b[k] = bf16_to_f32(b[k]);
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

// ---- runtime/half.h: every case as bit patterns (fp32 bits <-> 16-bit bits), worked by hand.

namespace {
struct Bits {
  uint32_t f32;
  uint16_t h;
  const char* what;
};
}  // namespace

TEST(HalfConvert, bf16_widens_exactly) {
  const Bits cases[] = {
      {0x00000000, 0x0000, "+0"},
      {0x80000000, 0x8000, "-0"},
      {0x3f800000, 0x3f80, "1"},
      {0xc0000000, 0xc000, "-2"},
      {0x00010000, 0x0001, "smallest bf16 subnormal 2^-133 (an fp32 subnormal, kept)"},
      {0x807f0000, 0x807f, "negative largest subnormal"},
      {0x7f7f0000, 0x7f7f, "largest finite"},
      {0x7f800000, 0x7f80, "+inf"},
      {0xff800000, 0xff80, "-inf"},
      {0x7fc10000, 0x7fc1, "quiet NaN, payload kept"},
      {0xff810000, 0xff81, "signalling NaN, negative, payload kept"},
  };
  for (const Bits& c : cases) EXPECT_EQ(f32_bits(bf16_to_f32(c.h)), c.f32) << c.what;
}

TEST(HalfConvert, bf16_narrows_to_nearest_even) {
  const Bits cases[] = {
      {0x3f800000, 0x3f80, "1 exact"},
      {0x3f807fff, 0x3f80, "just below the tie: down"},
      {0x3f808000, 0x3f80, "tie, 0x3f80 even: down"},
      {0x3f808001, 0x3f81, "just above the tie: up"},
      {0x3f818000, 0x3f82, "tie, 0x3f81 odd: up to even"},
      {0xbf818000, 0xbf82, "negative tie: magnitude up to even"},
      {0x3f80ffff, 0x3f81, "carry within the mantissa"},
      {0x3fffffff, 0x4000, "carry into the exponent"},
      {0x80000000, 0x8000, "-0 kept"},
      {0x00000001, 0x0000, "smallest fp32 subnormal: +0"},
      {0x00008000, 0x0000, "subnormal tie, even: down"},
      {0x00018000, 0x0002, "subnormal tie, odd: up"},
      {0x807fffff, 0x8080, "largest negative subnormal rounds to the smallest normal"},
      {0x7f7f7fff, 0x7f7f, "largest finite bf16 stays finite"},
      {0x7f7f8000, 0x7f80, "tie above the largest finite bf16: +inf"},
      {0x7f7fffff, 0x7f80, "largest fp32: +inf"},
      {0xff7fffff, 0xff80, "-largest fp32: -inf"},
      {0x7f800000, 0x7f80, "+inf"},
      {0xff800000, 0xff80, "-inf"},
      {0x7fc00000, 0x7fc0, "quiet NaN"},
      {0x7f800001, 0x7fc0, "signalling NaN with a low payload: quiet, not inf"},
      {0x7fbfffff, 0x7fff, "NaN with every payload bit: truncated, not carried"},
      {0xffffffff, 0xffff, "negative NaN: sign kept, no carry"},
      {0xff810000, 0xffc1, "negative signalling NaN: quiet bit set, payload kept"},
  };
  for (const Bits& c : cases) EXPECT_EQ(f32_to_bf16(f32_from_bits(c.f32)), c.h) << c.what;
}

TEST(HalfConvert, f16_widens_exactly) {
  const Bits cases[] = {
      {0x00000000, 0x0000, "+0"},
      {0x80000000, 0x8000, "-0"},
      {0x3f800000, 0x3c00, "1"},
      {0xc0000000, 0xc000, "-2"},
      {0x33800000, 0x0001, "smallest subnormal 2^-24"},
      {0xb3800000, 0x8001, "negative smallest subnormal"},
      {0x34000000, 0x0002, "2^-23"},
      {0x387fc000, 0x03ff, "largest subnormal 1023 * 2^-24"},
      {0x38800000, 0x0400, "smallest normal 2^-14"},
      {0x477fe000, 0x7bff, "largest finite 65504"},
      {0x7f800000, 0x7c00, "+inf"},
      {0xff800000, 0xfc00, "-inf"},
      {0x7fc00000, 0x7e00, "quiet NaN"},
      {0x7f802000, 0x7c01, "signalling NaN, payload kept"},
      {0xffffe000, 0xffff, "negative NaN, every payload bit"},
  };
  for (const Bits& c : cases) EXPECT_EQ(f32_bits(f16_to_f32(c.h)), c.f32) << c.what;
}

TEST(HalfConvert, f16_narrows_to_nearest_even) {
  const Bits cases[] = {
      {0x3f800000, 0x3c00, "1 exact"},
      {0x3f801000, 0x3c00, "1 + 2^-11, tie, even: down"},
      {0x3f803000, 0x3c02, "1 + 3 * 2^-11, tie, odd: up to even"},
      {0x3f801001, 0x3c01, "just above the tie: up"},
      {0x3f800fff, 0x3c00, "just below the tie: down"},
      {0x80000000, 0x8000, "-0 kept"},
      {0x33800000, 0x0001, "2^-24, the smallest subnormal"},
      {0x33000000, 0x0000, "2^-25: tie with 0, even: +0"},
      {0xb3000000, 0x8000, "-2^-25: -0"},
      {0x33000001, 0x0001, "just above 2^-25: up"},
      {0x33c00000, 0x0002, "3 * 2^-25: tie, odd: up to even"},
      {0x32800000, 0x0000, "2^-26: +0"},
      {0x00000001, 0x0000, "fp32 subnormal: +0"},
      {0x387fc000, 0x03ff, "largest subnormal exact"},
      {0x387fe000, 0x0400, "tie above the largest subnormal: the smallest normal"},
      {0x477fe000, 0x7bff, "65504 exact"},
      {0x477fefff, 0x7bff, "just below 65520: 65504"},
      {0x477ff000, 0x7c00, "65520, tie, odd: +inf"},
      {0x4e6e6b28, 0x7c00, "1e9: +inf"},
      {0xce6e6b28, 0xfc00, "-1e9: -inf"},
      {0x7f800000, 0x7c00, "+inf"},
      {0xff800000, 0xfc00, "-inf"},
      {0x7fc00000, 0x7e00, "quiet NaN"},
      {0x7f800001, 0x7e00, "signalling NaN: quiet NaN"},
      {0xffc00001, 0xfe00, "negative NaN: sign kept"},
  };
  for (const Bits& c : cases) EXPECT_EQ(f32_to_f16(f32_from_bits(c.f32)), c.h) << c.what;
}

TEST(HalfConvert, every_16_bit_value_round_trips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    const bool bf16_nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f), f16_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(h)), bf16_nan ? (h | 0x40) : h) << fmt::format("bf16 {:#06x}", b);
    ASSERT_EQ(f32_to_f16(f16_to_f32(h)), f16_nan ? ((h & 0x8000) | 0x7e00) : h) << fmt::format("f16 {:#06x}", b);
  }
}

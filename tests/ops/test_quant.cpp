// Group-wise affine int8/int4 weights (runtime/quant.h, kernels/weights.cl): the host quantiser's
// error bound and layouts, and linear() reading q8/q4 in place through the matrix-vector kernel
// (1..4 rows, with and without the fused SwiGLU input) and the tiled GEMM (more rows).
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "harness/harness.h"
#include "runtime/half.h"
#include "runtime/ops/linear.h"
#include "runtime/quant.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

constexpr DType kQuantTypes[] = {DType::q8, DType::q4};

// Quantises w, uploads the blocks, and replaces w by what the kernels will read.
Tensor upload_quantized(DType t, std::vector<float>& w, const Shape& shape) {
  auto blocks = quantize(t, w.data(), static_cast<int64_t>(w.size()));
  w = dequantize(t, blocks.data(), static_cast<int64_t>(w.size()));
  return rt().upload(blocks.data(), shape, t);
}

}  // namespace

TEST(quant, error_within_half_a_step) {
  // Each element within half its group's step (max - min) / (2^bits - 1), plus fp16 rounding of
  // the scale and offset; constant groups exact; groups that mix signs and magnitudes.
  auto w = random_floats(64 * 32, 11, -0.2f, 0.3f);
  for (int j = 0; j < 32; ++j) w[5 * 32 + j] = 0.125f;              // a constant group
  for (int j = 0; j < 32; ++j) w[6 * 32 + j] = j % 2 ? 40.f : -3.f;  // two values far apart
  for (DType t : kQuantTypes) {
    auto blocks = quantize(t, w.data(), static_cast<int64_t>(w.size()));
    ASSERT_EQ(blocks.size(), dtype_bytes(t, static_cast<int64_t>(w.size())));
    auto back = dequantize(t, blocks.data(), static_cast<int64_t>(w.size()));
    const int levels = (1 << quant_bits(t)) - 1;
    for (size_t g = 0; g < w.size() / 32; ++g) {
      float lo = w[g * 32], hi = lo;
      for (int j = 0; j < 32; ++j) lo = std::min(lo, w[g * 32 + j]), hi = std::max(hi, w[g * 32 + j]);
      const double step = (hi - lo) / levels;
      for (int j = 0; j < 32; ++j) {
        const size_t i = g * 32 + j;
        const double tol = 0.5 * step * 1.002 + 2e-3 * std::fabs(lo) + 1e-7;
        ASSERT_LE(std::fabs(double(back[i]) - w[i]), tol) << dtype_name(t) << " group " << g << " element " << j;
      }
    }
    for (int j = 0; j < 32; ++j) EXPECT_EQ(back[5 * 32 + j], 0.125f) << dtype_name(t);
    EXPECT_EQ(back[6 * 32], -3.f) << dtype_name(t);
  }
}

TEST(quant, block_layout_and_file_parts) {
  // One q4 group of codes 0..15, 15..0: the nibble order, the scale and offset placement, and the
  // file layout's parts back to the same blocks.
  std::vector<float> w(32);
  for (int j = 0; j < 32; ++j) w[j] = j < 16 ? float(j) : float(31 - j);  // min 0, max 15: step 1
  auto q4 = quantize(DType::q4, w.data(), 32);
  ASSERT_EQ(q4.size(), 20u);
  EXPECT_EQ(q4[0], 0x10);  // element 0 low nibble, element 1 high nibble
  EXPECT_EQ(q4[15], 0x01);
  uint16_t s, b;
  std::memcpy(&s, &q4[16], 2);
  std::memcpy(&b, &q4[18], 2);
  EXPECT_EQ(f16_to_f32(s), 1.0f);
  EXPECT_EQ(f16_to_f32(b), 0.0f);
  auto q8 = quantize(DType::q8, w.data(), 32);
  ASSERT_EQ(q8.size(), 36u);
  for (DType t : kQuantTypes) {
    const auto& blocks = t == DType::q8 ? q8 : q4;
    std::vector<uint8_t> codes;
    std::vector<uint16_t> scales, offsets;
    blocks_to_parts(t, blocks.data(), 32, codes, scales, offsets);
    EXPECT_EQ(codes.size(), quant_code_bytes(t));
    EXPECT_EQ(blocks_from_parts(t, codes.data(), scales.data(), offsets.data(), 32), blocks) << dtype_name(t);
  }
}

TEST(quant, refuses_what_it_cannot_hold) {
  std::vector<float> w(32, 1.f);
  EXPECT_TRUE(quantizable(w.data(), 32));
  EXPECT_FALSE(quantizable(w.data(), 31));
  w[3] = 70000.f;  // beyond fp16: the offset or scale could not be stored
  EXPECT_FALSE(quantizable(w.data(), 32));
  expect_error_containing([&] { quantize(DType::q8, w.data(), 32); }, "outside fp16's range");
  w[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(quantizable(w.data(), 32));
  expect_error_containing([&] { quantize(DType::q4, w.data(), 30); }, "not whole groups of 32");
  expect_error_containing([&] { rt().empty({3, 20}, DType::q8); }, "not a whole number of 32-element blocks");
}

TEST(quant, linear_reads_blocks_in_place) {
  // Rows 1..4 (matrix-vector kernel) and 5..70 (tiled GEMM, partial tiles), the LM's widths.
  struct Case {
    int rows, in, out;
    bool bias;
  };
  for (DType t : kQuantTypes)
    for (auto c : {Case{1, 32, 17, true}, Case{2, 96, 127, false}, Case{4, 1280, 384, true}, Case{1, 896, 1280, false},
                   Case{5, 64, 33, true}, Case{17, 160, 65, false}, Case{70, 1280, 130, true}}) {
      auto x = random_floats(static_cast<size_t>(c.rows) * c.in, 51);
      auto w = random_floats(static_cast<size_t>(c.out) * c.in, 52, -0.1f, 0.1f);
      auto b = random_floats(c.out, 53);
      Tensor wt = upload_quantized(t, w, {c.out, c.in});
      Tensor xt = rt().upload(x, {c.rows, c.in}), bt = rt().upload(b, {c.out});
      Guarded y(rt(), {c.rows, c.out});
      linear(rt(), xt, wt, c.bias ? &bt : nullptr, y);
      auto ref = ref_linear(x, w, c.bias ? &b : nullptr, c.rows, c.in, c.out);
      EXPECT_TRUE(all_close(y.read_f32(), ref, {c.rows, c.out}, 1e-4, 1e-4))
          << dtype_name(t) << " " << c.rows << "x" << c.in << "x" << c.out;
    }
}

TEST(quant, linear_swiglu_reads_blocks) {
  for (DType t : kQuantTypes)
    for (int rows : {1, 3, 9}) {
      const int in = 64, out = 48;
      auto gu = random_floats(static_cast<size_t>(rows) * 2 * in, 61);
      auto w = random_floats(static_cast<size_t>(out) * in, 62, -0.2f, 0.2f);
      Tensor wt = upload_quantized(t, w, {out, in});
      std::vector<float> act(static_cast<size_t>(rows) * in);
      for (int r = 0; r < rows; ++r)
        for (int k = 0; k < in; ++k) {
          float g = gu[r * 2 * in + k];
          act[r * in + k] = g / (1.f + std::exp(-g)) * gu[r * 2 * in + in + k];
        }
      Tensor gt = rt().upload(gu, {rows, 2 * in});
      Guarded y(rt(), {rows, out});
      linear_swiglu(rt(), gt, wt, y);
      EXPECT_TRUE(all_close(y.read_f32(), ref_linear(act, w, nullptr, rows, in, out), {rows, out}, 1e-4, 1e-4))
          << dtype_name(t) << " rows " << rows;
    }
}

TEST(quant, linear_refuses_an_input_size_off_the_group) {
  Tensor w = rt().empty({4, 64}, DType::q8);
  Tensor w2 = reshaped(w, {8, 32});
  Tensor x = rt().empty({1, 32}), y = rt().empty({1, 8});
  linear(rt(), x, w2, nullptr, y);  // 32 columns: fine
  Tensor w3 = reshaped(rt().empty({3, 32}, DType::q4), {2, 48});
  Tensor x3 = rt().empty({1, 48}), y3 = rt().empty({1, 2});
  expect_error_containing([&] { linear(rt(), x3, w3, nullptr, y3); }, "multiple of 32");
}

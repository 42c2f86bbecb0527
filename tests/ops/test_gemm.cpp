// runtime/gemm (CLBlast + our epilogues) against double-precision references.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <random>

#include "harness/harness.h"
#include "runtime/gemm.h"
#include "runtime/ops/convert.h"
#include "runtime/ops/linear.h"
#include "runtime/quant.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// Rounds w to bf16 in place (what the device reads back) and uploads the bf16 bits.
Tensor upload_bf16(std::vector<float>& w, const Shape& shape) {
  std::vector<uint16_t> b(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    b[i] = float_to_bf16(w[i]);
    w[i] = bf16_to_float(b[i]);
  }
  return rt().upload(b.data(), shape, DType::bf16);
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

TEST(gemm, linear_with_and_without_bias) {
  struct Case {
    int rows, in, out;
    bool bias;
  };
  for (auto c : {Case{7, 17, 61, true}, Case{17, 127, 7, false}, Case{61, 768, 256, true}, Case{1, 1280, 127, false}}) {
    auto x = random_floats(static_cast<size_t>(c.rows) * c.in, 11);
    auto w = random_floats(static_cast<size_t>(c.out) * c.in, 12);
    auto b = random_floats(c.out, 13);
    Tensor xt = rt().upload(x, {c.rows, c.in}), wt = rt().upload(w, {c.out, c.in}), bt = rt().upload(b, {c.out});
    Guarded y(rt(), {c.rows, c.out});
    linear(rt(), xt, wt, c.bias ? &bt : nullptr, y);
    auto ref = ref_linear(x, w, c.bias ? &b : nullptr, c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(y.read_f32(), ref, {c.rows, c.out}, 1e-4, 1e-4)) << c.rows << "x" << c.in << "x" << c.out;
  }
}

TEST(gemm, linear_fp16_weights) {
  int rows = 17, in = 61, out = 33;
  auto x = random_floats(rows * in, 21);
  auto w = random_floats(out * in, 22);
  std::vector<uint16_t> wh(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    wh[i] = float_to_half(w[i]);
    w[i] = half_to_float(wh[i]);
  }
  Tensor xt = rt().upload(x, {rows, in});
  Tensor wt = rt().upload(wh.data(), {out, in}, DType::f16);
  Guarded y(rt(), {rows, out});
  linear(rt(), xt, wt, nullptr, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_linear(x, w, nullptr, rows, in, out), {rows, out}, 1e-4, 1e-4));
}

TEST(gemm, strided_batched) {
  // batch of C[b] = A[b] * B[b]^T, as attention's QK^T over heads.
  int batch = 3, m = 17, n = 7, k = 61;
  auto a = random_floats(batch * m * k, 31), b = random_floats(batch * n * k, 32);
  Tensor at = rt().upload(a, {batch, m, k}), bt = rt().upload(b, {batch, n, k});
  Guarded c(rt(), {batch, m, n});
  GemmArgs g;
  g.tb = Trans::T;
  g.m = m;
  g.n = n;
  g.k = k;
  g.lda = k;
  g.ldb = k;
  g.ldc = n;
  gemm_strided_batched(rt(), g, at, m * k, bt, n * k, c, m * n, batch);
  std::vector<double> ref(batch * m * n);
  for (int z = 0; z < batch; ++z)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int q = 0; q < k; ++q) s += double(a[z * m * k + i * k + q]) * b[z * n * k + j * k + q];
        ref[z * m * n + i * n + j] = s;
      }
  EXPECT_TRUE(all_close(c.read_f32(), ref, {batch, m, n}, 1e-4, 1e-4));
}

TEST(gemm, shape_errors_are_reported) {
  Tensor x = rt().empty({4, 8}), w = rt().empty({5, 9}), y = rt().empty({4, 5});
  try {
    linear(rt(), x, w, nullptr, y);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not end in in=9"), std::string::npos) << e.what();
  }
}

TEST(gemm, linear_few_rows_gemv) {
  // 1..4 rows take the matrix-vector kernel: awkward sizes, the LM's decode shapes, fp16 weights,
  // bias, and a row count just past the kernel (5: CLBlast) for comparison.
  struct Case {
    int rows, in, out;
    bool bias, f16;
  };
  for (auto c : {Case{1, 7, 17, true, false}, Case{2, 61, 127, false, false}, Case{3, 127, 61, true, true},
                 Case{4, 1280, 384, false, false}, Case{1, 1280, 3840, false, true}, Case{1, 6848, 128, true, false},
                 Case{5, 129, 33, true, false}}) {
    auto x = random_floats(static_cast<size_t>(c.rows) * c.in, 31);
    auto w = random_floats(static_cast<size_t>(c.out) * c.in, 32);
    auto b = random_floats(c.out, 33);
    Tensor wt;
    if (c.f16) {
      std::vector<uint16_t> h(w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        h[i] = float_to_half(w[i]);
        w[i] = half_to_float(h[i]);
      }
      wt = rt().upload(h.data(), {c.out, c.in}, DType::f16);
    } else {
      wt = rt().upload(w, {c.out, c.in});
    }
    Tensor xt = rt().upload(x, {c.rows, c.in}), bt = rt().upload(b, {c.out});
    Guarded y(rt(), {c.rows, c.out});
    linear(rt(), xt, wt, c.bias ? &bt : nullptr, y);
    auto ref = ref_linear(x, w, c.bias ? &b : nullptr, c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(y.read_f32(), ref, {c.rows, c.out}, 1e-4, 1e-4)) << c.rows << "x" << c.in << "x" << c.out;
  }
}

TEST(gemm, linear_bf16_weights) {
  // bf16 weights through both paths: 1..4 rows (matrix-vector kernel, bits widened on load) and
  // more rows (widened to a scratch f32 for CLBlast); awkward sizes and the LM's decode shapes.
  // Reference: double precision from the bf16-rounded weights.
  struct Case {
    int rows, in, out;
    bool bias;
  };
  for (auto c : {Case{1, 7, 17, true}, Case{2, 61, 127, false}, Case{3, 127, 61, true}, Case{4, 1280, 384, false},
                 Case{1, 1280, 3840, false}, Case{1, 6848, 128, true}, Case{5, 129, 33, true}, Case{17, 61, 33, false},
                 Case{61, 768, 256, true}}) {
    auto x = random_floats(static_cast<size_t>(c.rows) * c.in, 41);
    auto w = random_floats(static_cast<size_t>(c.out) * c.in, 42);
    auto b = random_floats(c.out, 43);
    Tensor wt = upload_bf16(w, {c.out, c.in});
    Tensor xt = rt().upload(x, {c.rows, c.in}), bt = rt().upload(b, {c.out});
    Guarded y(rt(), {c.rows, c.out});
    linear(rt(), xt, wt, c.bias ? &bt : nullptr, y);
    auto ref = ref_linear(x, w, c.bias ? &b : nullptr, c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(y.read_f32(), ref, {c.rows, c.out}, 1e-4, 1e-4)) << c.rows << "x" << c.in << "x" << c.out;
  }
}

TEST(gemm, linear_swiglu) {
  // y = (silu(g) * u) w^T from a fused gate|up row: the activation inside the matrix-vector
  // kernel (1..4 rows) or the activation kernel then linear() (more rows); f32 and bf16 weights.
  struct Case {
    int rows, in, out;
    bool bf16;
  };
  for (auto c : {Case{1, 7, 5, false}, Case{3, 61, 33, true}, Case{4, 129, 17, false}, Case{1, 1792, 1280, true},
                 Case{5, 61, 33, false}, Case{17, 96, 40, true}}) {
    auto gu = random_floats(static_cast<size_t>(c.rows) * 2 * c.in, 51, -4.f, 4.f);
    auto w = random_floats(static_cast<size_t>(c.out) * c.in, 52);
    Tensor wt = c.bf16 ? upload_bf16(w, {c.out, c.in}) : rt().upload(w, {c.out, c.in});
    Tensor gt = rt().upload(gu, {c.rows, 2 * c.in});
    Guarded y(rt(), {c.rows, c.out});
    linear_swiglu(rt(), gt, wt, y);
    std::vector<float> act(static_cast<size_t>(c.rows) * c.in);
    for (int r = 0; r < c.rows; ++r)
      for (int k = 0; k < c.in; ++k) {
        double g = gu[static_cast<size_t>(r) * 2 * c.in + k], u = gu[static_cast<size_t>(r) * 2 * c.in + c.in + k];
        act[static_cast<size_t>(r) * c.in + k] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
      }
    auto ref = ref_linear(act, w, nullptr, c.rows, c.in, c.out);
    EXPECT_TRUE(all_close(y.read_f32(), ref, {c.rows, c.out}, 1e-4, 1e-4)) << c.rows << "x" << c.in << "x" << c.out;
  }
  Tensor gu = rt().empty({2, 10}), w = rt().empty({3, 4}), y = rt().empty({2, 3});
  try {
    linear_swiglu(rt(), gu, w, y);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gate|up must be f32 [rows, 8]"), std::string::npos) << e.what();
  }
}

TEST(gemm, narrow_to_bf16_rounding_and_specials) {
  // {fp32 bits, expected bf16 bits}: ties to even both ways, just above a tie, -0, subnormals
  // (bitwise, no flush), overflow to inf, infinities, and NaNs whose payload sits only in the
  // low 16 bits (truncation alone would make them inf).
  const std::vector<std::pair<uint32_t, uint16_t>> table = {
      {0x3f800000, 0x3f80},                        // 1
      {0x3f808000, 0x3f80},                        // 1 + 2^-8: tie, lower is even
      {0x3f818000, 0x3f82},                        // tie, upper is even
      {0x3f808001, 0x3f81},                        // just above the tie
      {0x3f807fff, 0x3f80},                        // just below the tie
      {0xbf808000, 0xbf80},                        // negative tie
      {0xbf818000, 0xbf82}, {0x00000000, 0x0000},  // +0
      {0x80000000, 0x8000},                        // -0
      {0x00008000, 0x0000},                        // subnormal tie to even (0)
      {0x00018000, 0x0002},                        // subnormal tie to even (up)
      {0x807fffff, 0x8080},                        // largest negative subnormal rounds up to -FLT_MIN
      {0x7f7fffff, 0x7f80},                        // FLT_MAX overflows to inf
      {0xff7fffff, 0xff80}, {0x7f7f7fff, 0x7f7f},  // largest value that stays finite
      {0x7f800000, 0x7f80},                        // +inf
      {0xff800000, 0xff80},                        // -inf
      {0x7fc00000, 0x7fc0},                        // quiet NaN
      {0xffc00000, 0xffc0},                        // negative quiet NaN
      {0x7f800001, 0x7fc0},                        // signalling NaN, payload only in the low bits
      {0xff80ffff, 0xffc0}, {0x7fbfffff, 0x7fff},  // NaN with every payload bit set
      {0x7fffffff, 0x7fff},                        // NaN that rounding would carry into the sign bit (-0)
  };
  // Then random bit patterns: every exponent, subnormals, NaNs. n is odd (guards on the half word).
  const int64_t n_random = 4099;
  std::vector<float> src;
  for (auto& [in, out] : table) src.push_back(from_bits(in));
  std::mt19937 gen(51);
  for (int64_t i = 0; i < n_random; ++i) src.push_back(from_bits(static_cast<uint32_t>(gen())));
  const int64_t n = static_cast<int64_t>(src.size());
  Tensor st = rt().upload(src, {n});
  Guarded dst(rt(), {n}, DType::bf16);
  narrow_to_bf16(rt(), st, dst);
  auto bits = dst.read_u16();
  ASSERT_EQ(bits.size(), static_cast<size_t>(n));
  for (size_t i = 0; i < table.size(); ++i)
    EXPECT_EQ(bits[i], table[i].second) << fmt::format("fp32 {:#010x}: got {:#06x}, expected {:#06x}", table[i].first,
                                                       bits[i], table[i].second);
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t in = to_bits(src[i]);
    uint16_t want = float_to_bf16(src[i]);
    bool nan_in = std::isnan(src[i]), nan_out = std::isnan(bf16_to_float(bits[i]));
    if (bits[i] != want || nan_in != nan_out) {
      if (bad++ < 5)
        ADD_FAILURE() << fmt::format("element {}: fp32 {:#010x} gave {:#06x}, expected {:#06x}", i, in, bits[i], want);
    }
    // Nearest: no other bf16 is closer (finite, in range).
    if (std::isfinite(src[i]) && std::isfinite(bf16_to_float(bits[i]))) {
      double err = std::fabs(double(bf16_to_float(bits[i])) - src[i]);
      double ulp = std::ldexp(1.0, std::max(std::ilogb(src[i]), -126) - 7);
      EXPECT_LE(err, ulp / 2) << fmt::format("element {}: fp32 {:#010x}", i, in);
    }
  }
  EXPECT_EQ(bad, 0);

  // Widening back is exact: bf16 bits << 16, through widen_to_f32, bit for bit (NaNs included).
  Guarded back(rt(), {n});
  widen_to_f32(rt(), dst, back);
  auto wide = back.read_f32();
  bad = 0;
  for (int64_t i = 0; i < n; ++i)
    if (to_bits(wide[i]) != static_cast<uint32_t>(bits[i]) << 16 && bad++ < 5)
      ADD_FAILURE() << fmt::format("widen element {}: bf16 {:#06x} gave {:#010x}", i, bits[i], to_bits(wide[i]));
  EXPECT_EQ(bad, 0);
}

TEST(gemm, bf16_dtype_errors_are_reported) {
  Tensor x = rt().empty({4, 8}), y = rt().empty({4, 5}), w_i32 = rt().empty({5, 8}, DType::i32);
  expect_error_containing([&] { linear(rt(), x, w_i32, nullptr, y); },
                          "weight [5,8] is i32, expected f32, f16, bf16, q8 or q4");
  Tensor f = rt().empty({17}), b = rt().empty({17}, DType::bf16), b_short = rt().empty({16}, DType::bf16);
  expect_error_containing([&] { narrow_to_bf16(rt(), b, b); }, "narrow_to_bf16: src is [17] bf16, expected f32");
  expect_error_containing([&] { narrow_to_bf16(rt(), f, f); }, "narrow_to_bf16: dst is [17] f32, expected bf16");
  expect_error_containing([&] { narrow_to_bf16(rt(), f, b_short); }, "expected bf16 with the 17 elements");
  Tensor i = rt().empty({17}, DType::i32);
  expect_error_containing([&] { widen_to_f32(rt(), i, f); },
                          "widen_to_f32: src is [17] i32, expected f32, f16 or bf16");
}

TEST(gemm, linear_gemv_path_many_rows_equals_each_row_alone) {
  // LinearPath::gemv (a decode batch): any number of rows through the matrix-vector kernel, in
  // chunks of 4; every row bit for bit what the row alone gives (1 row), and close to double.
  // f32, bf16 and q8 weights; plain and SwiGLU inputs; 9 rows (two full chunks and one row).
  struct Case {
    int rows, in, out;
    DType wt;
  };
  for (auto c : {Case{9, 61, 33, DType::f32}, Case{6, 1280, 96, DType::bf16}, Case{13, 128, 40, DType::q8}}) {
    auto x = random_floats(static_cast<size_t>(c.rows) * 2 * c.in, 71, -2.f, 2.f);
    auto w = random_floats(static_cast<size_t>(c.out) * c.in, 72);
    Tensor wt;
    if (c.wt == DType::bf16) {
      wt = upload_bf16(w, {c.out, c.in});
    } else if (c.wt == DType::q8) {
      auto blocks = quantize(DType::q8, w.data(), static_cast<int64_t>(w.size()));
      wt = rt().upload(blocks.data(), {c.out, c.in}, DType::q8);
    } else {
      wt = rt().upload(w, {c.out, c.in});
    }
    for (bool swiglu : {false, true}) {
      const int64_t xin = swiglu ? 2 * c.in : c.in;
      Tensor xt = rt().upload(x.data(), {c.rows, xin}, DType::f32);
      Guarded y(rt(), {c.rows, c.out});
      if (swiglu)
        linear_swiglu(rt(), xt, wt, y, LinearPath::gemv);
      else
        linear(rt(), xt, wt, nullptr, y, LinearPath::gemv);
      auto all = y.read_f32();
      for (int r = 0; r < c.rows; ++r) {
        Tensor xr = rt().upload(x.data() + static_cast<size_t>(r) * xin, {1, xin}, DType::f32);
        Guarded yr(rt(), {1, c.out});
        if (swiglu)
          linear_swiglu(rt(), xr, wt, yr);
        else
          linear(rt(), xr, wt, nullptr, yr);
        auto one = yr.read_f32();
        EXPECT_EQ(0, std::memcmp(one.data(), all.data() + static_cast<size_t>(r) * c.out, one.size() * 4))
            << "row " << r << " of " << c.rows << "x" << c.in << "x" << c.out << (swiglu ? " swiglu" : "");
      }
      if (c.wt == DType::f32 && !swiglu) {
        std::vector<float> xs(x.begin(), x.begin() + static_cast<size_t>(c.rows) * c.in);
        EXPECT_TRUE(all_close(all, ref_linear(xs, w, nullptr, c.rows, c.in, c.out), {c.rows, c.out}, 1e-4, 1e-4));
      }
    }
  }
}

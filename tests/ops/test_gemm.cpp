// runtime/gemm (CLBlast + our epilogues) against double-precision references.
#include "harness/harness.h"
#include "runtime/gemm.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

std::vector<double> ref_linear(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>* b,
                               int rows, int in, int out) {
  std::vector<double> y(static_cast<size_t>(rows) * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = b ? (*b)[o] : 0.0;
      for (int i = 0; i < in; ++i) s += static_cast<double>(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

}  // namespace

TEST(gemm, linear_with_and_without_bias) {
  struct Case { int rows, in, out; bool bias; };
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
  struct Case { int rows, in, out; bool bias, f16; };
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

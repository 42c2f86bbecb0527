// softmax.cl against a double-precision reference.
#include <cmath>
#include <limits>

#include "harness/harness.h"
#include "runtime/ops/softmax.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {
std::vector<double> ref_softmax(const std::vector<float>& x, int64_t rows, int64_t N) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < N; ++i) m = std::max(m, double(x[r * N + i]));
    for (int64_t i = 0; i < N; ++i) s += m == -INFINITY ? 0 : std::exp(x[r * N + i] - m);
    for (int64_t i = 0; i < N; ++i) y[r * N + i] = m == -INFINITY ? 0 : std::exp(x[r * N + i] - m) / s;
  }
  return y;
}
}  // namespace

TEST(softmax, last_axis) {
  // awkward sizes; the router's 64 experts; one row of a 4096-token attention.
  for (Shape s : {Shape{7}, Shape{17, 61}, Shape{61, 127}, Shape{127, 64}, Shape{3, 4096}}) {
    int64_t N = s.back(), rows = shape_numel(s) / N;
    auto x = random_floats(shape_numel(s), 71, -20.f, 20.f);
    Tensor xt = rt().upload(x, s);
    Guarded y(rt(), s);
    ops::softmax(rt(), xt, y);
    EXPECT_TRUE(all_close(y.read_f32(), ref_softmax(x, rows, N), s, 1e-6, 1e-4)) << shape_str(s);
  }
}

TEST(softmax, masked_entries) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.f, -inf, 2.f, -inf, -inf, -inf, -inf, -inf, 0.5f, -inf};  // 2 rows of 5; row 1 all masked
  Tensor xt = rt().upload(x, {2, 5});
  Guarded y(rt(), {2, 5});
  ops::softmax(rt(), xt, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_softmax(x, 2, 5), {2, 5}, 1e-6, 1e-5));
}

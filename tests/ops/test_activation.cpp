// activation.cl against double-precision references.
#include <cmath>

#include "harness/harness.h"
#include "runtime/ops/activation.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

double ref_act(ops::Act a, double x) {
  switch (a) {
    case ops::Act::gelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ops::Act::quick_gelu: return x / (1.0 + std::exp(-1.702 * x));
    case ops::Act::silu: return x / (1.0 + std::exp(-x));
  }
  return 0;
}

void check_act(ops::Act a, const Shape& shape, uint32_t seed) {
  auto x = random_floats(shape_numel(shape), seed, -6.f, 6.f);
  Tensor xt = rt().upload(x, shape);
  Guarded y(rt(), shape);
  ops::activation(rt(), a, xt, y);
  std::vector<double> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = ref_act(a, x[i]);
  EXPECT_TRUE(all_close(y.read_f32(), ref, shape, 1e-6, 1e-5));
}

}  // namespace

TEST(activation, gelu) {
  for (Shape s : {Shape{7}, Shape{17, 61}, Shape{127, 3072}}) check_act(ops::Act::gelu, s, 1);
}
TEST(activation, quick_gelu) {
  for (Shape s : {Shape{7}, Shape{17, 61}, Shape{101, 4096}}) check_act(ops::Act::quick_gelu, s, 2);
}
TEST(activation, silu) {
  for (Shape s : {Shape{7}, Shape{17, 61}, Shape{61, 6848}}) check_act(ops::Act::silu, s, 3);
}

TEST(activation, parse_rejects_unknown) { EXPECT_THROW(ops::parse_act("relu"), Error); }

TEST(activation, swiglu_fused_halves) {
  // gate|up fused in one [rows, 2*width] tensor, as a fused gate_up projection produces.
  for (auto [rows, width] : {std::pair{7, 17}, std::pair{61, 127}, std::pair{6, 896}}) {
    auto gu = random_floats(static_cast<size_t>(rows) * 2 * width, 7, -4.f, 4.f);
    Tensor g = rt().upload(gu, {rows, 2 * width});
    Guarded y(rt(), {rows, width});
    ops::swiglu(rt(), g, g, y, rows, width, 2 * width, 0, width);
    std::vector<double> ref(static_cast<size_t>(rows) * width);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < width; ++c) {
        double a = gu[r * 2 * width + c], b = gu[r * 2 * width + width + c];
        ref[r * width + c] = a / (1 + std::exp(-a)) * b;
      }
    EXPECT_TRUE(all_close(y.read_f32(), ref, {rows, width}, 1e-6, 1e-5));
  }
}

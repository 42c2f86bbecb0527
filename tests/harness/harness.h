// Test harness: the device under test, double-precision comparison, guarded outputs, seeded data.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace dsocr::test {

// The Runtime for the device given by --device / $DSOCR_DEVICE (created on first use), with the
// tuning knobs of the environment (Tuning::from_env) and the device's stored CLBlast tuning.
// Tests of other knobs make a Runtime of their own with RuntimeOptions::tuning set.
Runtime& rt();

// Seeded uniform values in [lo, hi).
std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);
std::vector<int32_t> random_ints(size_t n, uint32_t seed, int32_t lo, int32_t hi);

// An output tensor placed inside a larger buffer with guard regions before and after, all
// filled with a sentinel; check() verifies that the kernel wrote no byte outside the tensor.
class Guarded {
 public:
  Guarded(Runtime& rt, const Shape& shape, DType dtype = DType::f32);
  Tensor& tensor() { return view_; }
  operator Tensor&() { return view_; }
  // Reads the output back and fails the test if any guard byte changed.
  std::vector<float> read_f32();
  std::vector<int32_t> read_i32();
  std::vector<uint16_t> read_u16();  // the raw bits of a 16-bit output (f16, bf16)

 private:
  void check_guards();
  Runtime& rt_;
  Tensor base_, view_;
  size_t front_ = 0, back_ = 0;
};

// Every element of out against ref: |out-ref| <= atol + rtol*|ref|, no NaN/Inf where ref is
// finite. On failure names the first mismatch with its coordinates in `shape` and the count.
::testing::AssertionResult all_close(const std::vector<float>& out, const std::vector<double>& ref,
                                     const Shape& shape, double atol = 1e-4, double rtol = 1e-3);
::testing::AssertionResult all_equal(const std::vector<int32_t>& out, const std::vector<int32_t>& ref,
                                     const Shape& shape);

std::vector<double> to_double(const std::vector<float>& v);

// y [rows, out] = x [rows, in] w [out, in]^T (+ b [out]) in double precision.
std::vector<double> ref_linear(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>* b,
                               int rows, int in, int out);

// fp16 helpers for weights stored as half (round to nearest even).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

// bf16 helpers for weights stored as raw bfloat16 bits: round to nearest even, overflow to ±inf,
// NaN kept NaN (quiet bit set, sign kept); widening is exact.
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t b);

// fn must throw dsocr::Error whose message contains needle (a test failure otherwise).
void expect_error_containing(const std::function<void()>& fn, const std::string& needle);

}  // namespace dsocr::test

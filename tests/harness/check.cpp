#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "harness/harness.h"
#include "runtime/half.h"

namespace dsocr::test {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

std::vector<int32_t> random_ints(size_t n, uint32_t seed, int32_t lo, int32_t hi) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

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

namespace {
constexpr uint32_t kSentinel = 0x7fc0dead;  // a quiet NaN with a recognisable payload

std::string coords(size_t flat, const Shape& shape) {
  std::vector<int64_t> c(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    c[d] = static_cast<int64_t>(flat % shape[d]);
    flat /= shape[d];
  }
  return fmt::format("[{}]", fmt::join(c, ","));
}
}  // namespace

Guarded::Guarded(Runtime& rt, const Shape& shape, DType dtype) : rt_(rt) {
  cl_uint align_bits = 0;
  clGetDeviceInfo(rt.device().device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof(align_bits), &align_bits, nullptr);
  front_ = std::max<size_t>(align_bits / 8, 256);
  back_ = 256;
  size_t bytes = shape_numel(shape) * dtype_size(dtype);
  size_t total = front_ + round_up(bytes, 4) + back_;
  base_ = rt.empty({static_cast<int64_t>(total / 4)}, DType::i32, "guarded test output");
  std::vector<uint32_t> fill(total / 4, kSentinel);
  rt.write(base_, fill.data(), total);
  cl_buffer_region region{front_, std::max<size_t>(bytes, 4)};
  cl_int err = CL_SUCCESS;
  cl_mem sub = clCreateSubBuffer(base_.mem()(), CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  check_cl(err, "clCreateSubBuffer");
  view_.shape = shape;
  view_.dtype = dtype;
  view_.buffer = std::make_shared<Buffer>(cl::Buffer(sub), region.size, std::make_shared<MemoryStats>());
}

void Guarded::check_guards() {
  size_t total = base_.bytes();
  std::vector<uint32_t> all(total / 4);
  rt_.read(base_, all.data(), total);
  size_t bytes = view_.bytes();
  size_t body_end = front_ + bytes;
  const auto* raw = reinterpret_cast<const unsigned char*>(all.data());
  const auto* sentinel = reinterpret_cast<const unsigned char*>(&kSentinel);
  for (size_t i = 0; i < total; ++i) {
    if (i >= front_ && i < body_end) continue;
    if (raw[i] != sentinel[i % 4]) {
      ADD_FAILURE() << fmt::format("guard byte overwritten at offset {} {} the output ({} bytes)",
                                   i < front_ ? static_cast<long>(front_ - i) : static_cast<long>(i - body_end),
                                   i < front_ ? "before" : "after", bytes);
      return;
    }
  }
}

std::vector<float> Guarded::read_f32() {
  check_guards();
  return rt_.read_f32(view_);
}

std::vector<int32_t> Guarded::read_i32() {
  check_guards();
  return rt_.read_i32(view_);
}

std::vector<uint16_t> Guarded::read_u16() {
  check_guards();
  if (dtype_size(view_.dtype) != 2) throw Error(fmt::format("read_u16 of a {} tensor", dtype_name(view_.dtype)));
  std::vector<uint16_t> v(view_.numel());
  rt_.read(view_, v.data(), view_.bytes());
  return v;
}

::testing::AssertionResult all_close(const std::vector<float>& out, const std::vector<double>& ref,
                                     const Shape& shape, double atol, double rtol) {
  if (out.size() != ref.size() || static_cast<int64_t>(out.size()) != shape_numel(shape))
    return ::testing::AssertionFailure() << fmt::format("size mismatch: out {} ref {} shape {}", out.size(),
                                                        ref.size(), shape_str(shape));
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    double o = out[i], r = ref[i];
    bool ok = std::isfinite(r) ? (std::isfinite(o) && std::fabs(o - r) <= atol + rtol * std::fabs(r))
                               : (std::isnan(r) ? std::isnan(o) : o == r);
    if (!ok) {
      if (bad == 0) first = i;
      ++bad;
    }
    if (std::isfinite(o) && std::isfinite(r)) worst = std::max(worst, std::fabs(o - r));
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << fmt::format(
             "{} of {} elements differ (atol {}, rtol {}); first at {}: got {:.8g}, expected {:.8g}; max |diff| {:.3g}",
             bad, out.size(), atol, rtol, coords(first, shape), out[first], ref[first], worst);
}

::testing::AssertionResult all_equal(const std::vector<int32_t>& out, const std::vector<int32_t>& ref,
                                     const Shape& shape) {
  if (out.size() != ref.size())
    return ::testing::AssertionFailure() << fmt::format("size mismatch: out {} ref {}", out.size(), ref.size());
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != ref[i])
      return ::testing::AssertionFailure()
             << fmt::format("first mismatch at {}: got {}, expected {}", coords(i, shape), out[i], ref[i]);
  return ::testing::AssertionSuccess();
}

// The library's converters (runtime/half.h), under the names the tests use.
uint16_t float_to_half(float f) { return f32_to_f16(f); }
float half_to_float(uint16_t h) { return f16_to_f32(h); }
uint16_t float_to_bf16(float f) { return f32_to_bf16(f); }
float bf16_to_float(uint16_t b) { return bf16_to_f32(b); }

void expect_error_containing(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace dsocr::test

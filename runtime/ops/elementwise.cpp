#include "runtime/ops/elementwise.h"

#include <fmt/format.h>

#include <climits>

namespace dsocr::ops {

void add(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y) {
  if (a.numel() != b.numel() || a.numel() != y.numel())
    throw Error(
        fmt::format("add: sizes differ: a {} b {} y {}", shape_str(a.shape), shape_str(b.shape), shape_str(y.shape)));
  size_t n = static_cast<size_t>(a.numel());
  auto& k = rt.kernel("elementwise.cl", "add_f32");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), a, b, y, static_cast<cl_int>(n));
}

void add_broadcast(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y) {
  if (b.numel() == 0 || a.numel() % b.numel() != 0 || a.numel() != y.numel())
    throw Error(fmt::format("add_broadcast: a {} must repeat b {} and match y {}", shape_str(a.shape),
                            shape_str(b.shape), shape_str(y.shape)));
  size_t n = static_cast<size_t>(a.numel());
  auto& k = rt.kernel("elementwise.cl", "add_bcast_f32");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), a, b, y, static_cast<cl_int>(n),
            static_cast<cl_int>(b.numel()));
}

void copy_rows(Runtime& rt, const Tensor& x, int64_t x_off, int64_t x_ld, Tensor& y, int64_t y_off, int64_t y_ld,
               int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  auto reach = [&](int64_t off, int64_t ld) { return off + (rows - 1) * ld + cols; };
  if (x.dtype != DType::f32 || y.dtype != DType::f32 || x_off < 0 || y_off < 0 || x_ld < cols || y_ld < cols ||
      reach(x_off, x_ld) > x.numel() || reach(y_off, y_ld) > y.numel() || reach(y_off, y_ld) > INT32_MAX ||
      reach(x_off, x_ld) > INT32_MAX)
    throw Error(
        fmt::format("copy_rows: {} rows of {} (x at {} step {}, y at {} step {}) do not fit x {} and y {} (f32)", rows,
                    cols, x_off, x_ld, y_off, y_ld, shape_str(x.shape), shape_str(y.shape)));
  auto& k = rt.kernel("elementwise.cl", "copy_rows_f32");
  rt.launch(k, cl::NDRange(round_up(cols, 64), rows), cl::NDRange(64, 1), x, (cl_int)x_off, (cl_int)x_ld, y,
            (cl_int)y_off, (cl_int)y_ld, (cl_int)rows, (cl_int)cols);
}

void fill_uniform(Runtime& rt, Tensor& y, uint32_t seed, float offset, float scale) {
  if (y.dtype != DType::f32 || y.numel() > INT32_MAX)
    throw Error(fmt::format("fill_uniform: y must be f32 with < 2^31 elements, got {} {}", dtype_name(y.dtype),
                            shape_str(y.shape)));
  size_t n = static_cast<size_t>(y.numel());
  auto& k = rt.kernel("elementwise.cl", "fill_uniform_f32");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), y, static_cast<cl_int>(n), static_cast<cl_uint>(seed),
            offset, scale);
}

}  // namespace dsocr::ops

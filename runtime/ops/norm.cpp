#include "runtime/ops/norm.h"

#include <fmt/format.h>

namespace dsocr::ops {
namespace {

constexpr size_t kWG = 256;

void check_affine(const char* op, const Tensor& x, const Tensor& y, const Tensor& w, const Tensor* b, int64_t C) {
  if (x.dtype != DType::f32 || y.dtype != DType::f32) throw Error(fmt::format("{}: x and y must be f32", op));
  if (y.shape != x.shape)
    throw Error(fmt::format("{}: y {} must have the shape of x {}", op, shape_str(y.shape), shape_str(x.shape)));
  if (w.numel() != C || w.dtype != DType::f32)
    throw Error(
        fmt::format("{}: weight {} ({}) must be f32 with {} elements", op, shape_str(w.shape), dtype_name(w.dtype), C));
  if (b && (b->numel() != C || b->dtype != DType::f32))
    throw Error(fmt::format("{}: bias {} must be f32 with {} elements", op, shape_str(b->shape), C));
}

}  // namespace

void layer_norm(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps) {
  if (x.rank() < 1) throw Error("layer_norm: x must have at least one dimension");
  int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  check_affine("layer_norm", x, y, w, &b, C);
  auto& k = rt.kernel("norm.cl", "layer_norm_f32");
  rt.launch(k, cl::NDRange(rows * kWG), cl::NDRange(kWG), x, w, b, y, static_cast<cl_int>(C), eps);
}

void layer_norm_2d(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps) {
  if (x.rank() != 4) throw Error(fmt::format("layer_norm_2d: x must be [N,C,H,W], got {}", shape_str(x.shape)));
  int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  check_affine("layer_norm_2d", x, y, w, &b, C);
  auto& k = rt.kernel("norm.cl", "layer_norm_2d_f32");
  rt.launch(k, cl::NDRange(round_up(HW, 64), N), cl::NDRange(64, 1), x, w, b, y, static_cast<cl_int>(C),
            static_cast<cl_int>(HW), eps);
}

void rms_norm(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, float eps) {
  if (x.rank() < 1) throw Error("rms_norm: x must have at least one dimension");
  int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  check_affine("rms_norm", x, y, w, nullptr, C);
  auto& k = rt.kernel("norm.cl", "rms_norm_f32");
  rt.launch(k, cl::NDRange(rows * kWG), cl::NDRange(kWG), x, w, y, static_cast<cl_int>(C), eps);
}

void add_rms_norm(Runtime& rt, Tensor& x, const Tensor& a, const Tensor* b, const Tensor& w, Tensor& y, float eps) {
  if (x.rank() < 1) throw Error("add_rms_norm: x must have at least one dimension");
  int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  check_affine("add_rms_norm", x, y, w, nullptr, C);
  for (const Tensor* t : {&a, b})
    if (t && (t->dtype != DType::f32 || t->numel() != x.numel()))
      throw Error(fmt::format("add_rms_norm: addend {} {} must be f32 with the {} elements of x {}",
                              t->defined() ? shape_str(t->shape) : "undefined",
                              t->defined() ? dtype_name(t->dtype) : "", x.numel(), shape_str(x.shape)));
  if (y.buffer == x.buffer) throw Error("add_rms_norm: y must not be x (x keeps the sum)");
  auto& k = rt.kernel("norm.cl", "add_rms_norm_f32");
  rt.launch(k, cl::NDRange(rows * kWG), cl::NDRange(kWG), x, a, b ? *b : a, static_cast<cl_int>(b ? 2 : 1), w, y,
            static_cast<cl_int>(C), eps);
}

}  // namespace dsocr::ops

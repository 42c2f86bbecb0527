#include "runtime/ops/linear.h"

#include <fmt/format.h>

#include <string>

#include "runtime/gemm.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/convert.h"
#include "runtime/ops/weight_format.h"

namespace dsocr {
namespace {

constexpr int64_t kGemvMaxRows = 4;
constexpr size_t kGemvWG = 128;  // kernels/linear.cl: WG work-items; LANES per output: Tuning::gemv_lanes_for
// Tuning::gemv off (DSOCR_GEMV=0) sends every linear() through CLBlast (benchmark comparisons).
bool gemv_enabled(const Runtime& rt) { return rt.tuning().gemv; }

// y [rows, out] = x' w^T by the matrix-vector kernel; x' = x [rows, in], or with swiglu the
// SwiGLU product of x [rows, 2*in] (gate | up).
void gemv(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, int64_t rows, int64_t in, int64_t out,
          bool swiglu) {
  const size_t lanes = static_cast<size_t>(rt.tuning().gemv_lanes_for(rt.device().is_gpu));
  Defines d{{"WG", std::to_string(kGemvWG)}, {"LANES", std::to_string(lanes)}};
  ops::add_weight_define(d, w.dtype);
  if (swiglu) d["X_SWIGLU"] = "1";
  // Rows per chunk: each row's arithmetic is the same for every choice.
  d["ROWS"] = rows == 1 ? "1" : std::to_string(rt.tuning().gemv_rows_for(rt.device().is_gpu));
  if (!rt.tuning().gemv_wide_for(rt.device().is_gpu)) d["NO_WIDE"] = "1";
  auto& k = rt.kernel("linear.cl", "gemv_f32", d);
  const size_t feats = kGemvWG / lanes, groups = (static_cast<size_t>(out) + feats - 1) / feats;
  rt.launch(k, cl::NDRange(groups * kGemvWG), cl::NDRange(kGemvWG), x, w, y, static_cast<cl_int>(rows),
            static_cast<cl_int>(in), static_cast<cl_int>(out));
}

// y [rows, out] = x w^T by our tiled GEMM, reading quantised w in place.
void gemm_quantized(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, int64_t rows, int64_t in, int64_t out) {
  Defines d;
  ops::add_weight_define(d, w.dtype);
  auto& k = rt.kernel("linear.cl", "linear_gemm_f32", d);
  rt.launch(k, cl::NDRange(round_up(static_cast<size_t>(out), 64) / 4, round_up(static_cast<size_t>(rows), 64) / 4),
            cl::NDRange(16, 16), x, w, y, static_cast<cl_int>(rows), static_cast<cl_int>(in), static_cast<cl_int>(out));
}

void check_weight(const char* op, const Tensor& w) {
  if (!ops::is_weight_dtype(w.dtype))
    throw Error(fmt::format("{}: weight {} is {}, expected f32, f16, bf16, q8 or q4", op, shape_str(w.shape),
                            dtype_name(w.dtype)));
  if (dtype_is_quantized(w.dtype) && w.dim(1) % 32 != 0)
    throw Error(
        fmt::format("{}: quantised weight {} needs an input size that is a multiple of 32", op, shape_str(w.shape)));
}

}  // namespace

void add_bias(Runtime& rt, Tensor& y, const Tensor& bias, size_t rows, size_t cols, size_t ld, size_t y_off) {
  if (bias.numel() < static_cast<int64_t>(cols)) throw Error("add_bias: bias shorter than the row");
  auto& k = rt.kernel("linear.cl", "add_bias_f32");
  rt.launch(k, cl::NDRange(round_up(cols, 64), rows), cl::NDRange(64, 1), y, bias, static_cast<cl_int>(rows),
            static_cast<cl_int>(cols), static_cast<cl_int>(ld), static_cast<cl_int>(y_off));
}

void linear(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, LinearPath path) {
  if (w.rank() != 2) throw Error(fmt::format("linear: weight must be [out,in], got {}", shape_str(w.shape)));
  check_weight("linear", w);
  if (x.dtype != DType::f32 || y.dtype != DType::f32)
    throw Error(fmt::format("linear: x ({}) and y ({}) must be f32", dtype_name(x.dtype), dtype_name(y.dtype)));
  int64_t out = w.dim(0), in = w.dim(1);
  if (x.rank() < 1 || x.dim(-1) != in)
    throw Error(
        fmt::format("linear: x {} does not end in in={} of weight {}", shape_str(x.shape), in, shape_str(w.shape)));
  int64_t rows = x.numel() / in;
  if (y.numel() != rows * out || y.dim(-1) != out)
    throw Error(fmt::format("linear: y {} must be [..., {}] with {} rows", shape_str(y.shape), out, rows));
  if (bias && bias->defined() && bias->numel() != out)
    throw Error(fmt::format("linear: bias {} must have {} elements", shape_str(bias->shape), out));
  if (path == LinearPath::gemv || (rows <= kGemvMaxRows && gemv_enabled(rt))) {
    gemv(rt, x, w, y, rows, in, out, false);
    if (bias && bias->defined()) add_bias(rt, y, *bias, rows, out, out);
    return;
  }
  if (dtype_is_quantized(w.dtype)) {
    gemm_quantized(rt, x, w, y, rows, in, out);
    if (bias && bias->defined()) add_bias(rt, y, *bias, rows, out, out);
    return;
  }
  Tensor wf = w;
  if (w.dtype != DType::f32) {
    wf = rt.empty(w.shape, DType::f32,
                  w.dtype == DType::f16 ? "linear fp16 weight widened" : "linear bf16 weight widened");
    widen_to_f32(rt, w, wf);
  }
  GemmArgs g;
  g.ta = Trans::N;
  g.tb = Trans::T;
  g.m = rows;
  g.n = out;
  g.k = in;
  g.lda = in;
  g.ldb = in;
  g.ldc = out;
  gemm(rt, g, x, wf, y);
  if (bias && bias->defined()) add_bias(rt, y, *bias, rows, out, out);
}

void linear_swiglu(Runtime& rt, const Tensor& gu, const Tensor& w, Tensor& y, LinearPath path) {
  if (w.rank() != 2) throw Error(fmt::format("linear_swiglu: weight must be [out,in], got {}", shape_str(w.shape)));
  const int64_t out = w.dim(0), in = w.dim(1);
  if (gu.rank() != 2 || gu.dim(1) != 2 * in || gu.dtype != DType::f32)
    throw Error(fmt::format("linear_swiglu: gate|up must be f32 [rows, {}] for weight {}, got {} {}", 2 * in,
                            shape_str(w.shape), shape_str(gu.shape), dtype_name(gu.dtype)));
  const int64_t rows = gu.dim(0);
  if (y.shape != Shape{rows, out} || y.dtype != DType::f32)
    throw Error(fmt::format("linear_swiglu: y must be f32 [{},{}], got {}", rows, out, shape_str(y.shape)));
  check_weight("linear_swiglu", w);
  if (path == LinearPath::gemv || (rows <= kGemvMaxRows && gemv_enabled(rt))) {
    gemv(rt, gu, w, y, rows, in, out, true);
    return;
  }
  Tensor act = rt.empty({rows, in}, DType::f32, "swiglu product");
  ops::swiglu(rt, gu, gu, act, static_cast<int>(rows), static_cast<int>(in), static_cast<int>(2 * in), 0,
              static_cast<int>(in));
  linear(rt, act, w, nullptr, y);
}

}  // namespace dsocr

#include "runtime/gemm.h"

#include <clblast.h>
#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "runtime/ops/activation.h"

namespace dsocr {
namespace {

const char* clblast_name(clblast::StatusCode s) {
  using S = clblast::StatusCode;
  switch (s) {
    case S::kNotImplemented: return "kNotImplemented";
    case S::kInvalidMatrixA: return "kInvalidMatrixA";
    case S::kInvalidMatrixB: return "kInvalidMatrixB";
    case S::kInvalidMatrixC: return "kInvalidMatrixC";
    case S::kInvalidDimension: return "kInvalidDimension";
    case S::kInvalidLeadDimA: return "kInvalidLeadDimA";
    case S::kInvalidLeadDimB: return "kInvalidLeadDimB";
    case S::kInvalidLeadDimC: return "kInvalidLeadDimC";
    case S::kInsufficientMemoryA: return "kInsufficientMemoryA (buffer A too small for the sizes)";
    case S::kInsufficientMemoryB: return "kInsufficientMemoryB (buffer B too small for the sizes)";
    case S::kInsufficientMemoryC: return "kInsufficientMemoryC (buffer C too small for the sizes)";
    case S::kInsufficientMemoryTemp: return "kInsufficientMemoryTemp";
    case S::kInvalidBatchCount: return "kInvalidBatchCount";
    case S::kInvalidLocalMemUsage: return "kInvalidLocalMemUsage";
    case S::kNoHalfPrecision: return "kNoHalfPrecision";
    case S::kDatabaseError: return "kDatabaseError";
    case S::kTempBufferAllocFailure: return "kTempBufferAllocFailure";
    case S::kUnknownError: return "kUnknownError";
    case S::kUnexpectedError: return "kUnexpectedError";
    default: return cl_error_name(static_cast<cl_int>(s));
  }
}

void check_clblast(clblast::StatusCode s, const char* call, const GemmArgs& g) {
  if (s == clblast::StatusCode::kSuccess) return;
  std::string msg = fmt::format("CLBlast {} failed: {} ({}) for M={} N={} K={} lda={} ldb={} ldc={}", call,
                                clblast_name(s), static_cast<int>(s), g.m, g.n, g.k, g.lda, g.ldb, g.ldc);
  if (s == clblast::StatusCode::kTempBufferAllocFailure || s == clblast::StatusCode::kOpenCLOutOfResources)
    throw OutOfDeviceMemory(msg);
  throw Error(msg);
}

constexpr int64_t kGemvMaxRows = 4;
constexpr size_t kGemvWG = 128;
// DSOCR_GEMV=0 sends every linear() through CLBlast (benchmark comparisons).
bool gemv_enabled() {
  const char* e = std::getenv("DSOCR_GEMV");
  return !(e && std::string(e) == "0");
}

clblast::Transpose tr(Trans t) { return t == Trans::T ? clblast::Transpose::kYes : clblast::Transpose::kNo; }

void require_f32(const Tensor& t, const char* which) {
  if (t.dtype != DType::f32) throw Error(fmt::format("gemm: {} must be f32, got {}", which, dtype_name(t.dtype)));
}

// y [rows, out] = x' w^T by the matrix-vector kernel; x' = x [rows, in], or with swiglu the
// SwiGLU product of x [rows, 2*in] (gate | up).
void gemv(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, int64_t rows, int64_t in, int64_t out,
          bool swiglu) {
  Defines d{{"WG", std::to_string(kGemvWG)}};
  if (w.dtype != DType::f32) d[w.dtype == DType::f16 ? "WEIGHT_F16" : "WEIGHT_BF16"] = "1";
  if (swiglu) d["X_SWIGLU"] = "1";
  auto& k = rt.kernel("gemv.cl", "gemv_f32", d);
  rt.launch(k, cl::NDRange(static_cast<size_t>(out) * kGemvWG), cl::NDRange(kGemvWG), x, w, y,
            static_cast<cl_int>(rows), static_cast<cl_int>(in), static_cast<cl_int>(out));
}

}  // namespace

void gemm(Runtime& rt, const GemmArgs& g, const Tensor& a, const Tensor& b, Tensor& c) {
  require_f32(a, "A");
  require_f32(b, "B");
  require_f32(c, "C");
  if (g.m == 0 || g.n == 0) return;
  cl_command_queue q = rt.queue()();
  cl_event ev = nullptr;
  auto s = clblast::Gemm<float>(clblast::Layout::kRowMajor, tr(g.ta), tr(g.tb), g.m, g.n, g.k, g.alpha, a.mem()(),
                                g.a_off, g.lda, b.mem()(), g.b_off, g.ldb, g.beta, c.mem()(), g.c_off, g.ldc, &q,
                                rt.profiling() ? &ev : nullptr);
  rt.count_launch();
  check_clblast(s, "Gemm", g);
  rt.record_event(fmt::format("clblast_sgemm_{}x{}x{}", g.m, g.n, g.k), ev);
}

void gemm_strided_batched(Runtime& rt, const GemmArgs& g, const Tensor& a, size_t a_stride, const Tensor& b,
                          size_t b_stride, Tensor& c, size_t c_stride, size_t batch) {
  require_f32(a, "A");
  require_f32(b, "B");
  require_f32(c, "C");
  if (g.m == 0 || g.n == 0 || batch == 0) return;
  cl_command_queue q = rt.queue()();
  cl_event ev = nullptr;
  auto s = clblast::GemmStridedBatched<float>(clblast::Layout::kRowMajor, tr(g.ta), tr(g.tb), g.m, g.n, g.k, g.alpha,
                                              a.mem()(), g.a_off, g.lda, a_stride, b.mem()(), g.b_off, g.ldb, b_stride,
                                              g.beta, c.mem()(), g.c_off, g.ldc, c_stride, batch, &q,
                                              rt.profiling() ? &ev : nullptr);
  rt.count_launch();
  check_clblast(s, "GemmStridedBatched", g);
  rt.record_event(fmt::format("clblast_sgemm_batched_{}x{}x{}x{}", batch, g.m, g.n, g.k), ev);
}

void add_bias(Runtime& rt, Tensor& y, const Tensor& bias, size_t rows, size_t cols, size_t ld, size_t y_off) {
  if (bias.numel() < static_cast<int64_t>(cols)) throw Error("add_bias: bias shorter than the row");
  auto& k = rt.kernel("gemm_epilogue.cl", "add_bias_f32");
  rt.launch(k, cl::NDRange(round_up(cols, 64), rows), cl::NDRange(64, 1), y, bias, static_cast<cl_int>(rows),
            static_cast<cl_int>(cols), static_cast<cl_int>(ld), static_cast<cl_int>(y_off));
}

void widen_to_f32(Runtime& rt, const Tensor& src, Tensor& dst) {
  if (dst.dtype != DType::f32 || dst.numel() != src.numel())
    throw Error(fmt::format("widen_to_f32: dst is {} {}, expected f32 with the {} elements of src {} {}",
                            shape_str(dst.shape), dtype_name(dst.dtype), src.numel(), shape_str(src.shape),
                            dtype_name(src.dtype)));
  const char* name = src.dtype == DType::f16    ? "widen_f16"
                     : src.dtype == DType::bf16 ? "widen_bf16"
                     : src.dtype == DType::f32  ? "copy_f32"
                                                : nullptr;
  if (!name)
    throw Error(fmt::format("widen_to_f32: src is {} {}, expected f32, f16 or bf16", shape_str(src.shape),
                            dtype_name(src.dtype)));
  size_t n = static_cast<size_t>(src.numel());
  if (n > static_cast<size_t>(INT_MAX))
    throw NotImplemented(fmt::format("widen_to_f32: {} elements exceed the 32-bit index range", n));
  if (n == 0) return;
  auto& k = rt.kernel("gemm_epilogue.cl", name);
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), src, dst, static_cast<cl_int>(n));
}

void narrow_to_bf16(Runtime& rt, const Tensor& src, Tensor& dst) {
  if (src.dtype != DType::f32)
    throw Error(fmt::format("narrow_to_bf16: src is {} {}, expected f32", shape_str(src.shape), dtype_name(src.dtype)));
  if (dst.dtype != DType::bf16 || dst.numel() != src.numel())
    throw Error(fmt::format("narrow_to_bf16: dst is {} {}, expected bf16 with the {} elements of src {}",
                            shape_str(dst.shape), dtype_name(dst.dtype), src.numel(), shape_str(src.shape)));
  size_t n = static_cast<size_t>(src.numel());
  if (n > static_cast<size_t>(INT_MAX))
    throw NotImplemented(fmt::format("narrow_to_bf16: {} elements exceed the 32-bit index range", n));
  if (n == 0) return;
  auto& k = rt.kernel("gemm_epilogue.cl", "narrow_bf16");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), src, dst, static_cast<cl_int>(n));
}

void linear(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
  if (w.rank() != 2) throw Error(fmt::format("linear: weight must be [out,in], got {}", shape_str(w.shape)));
  if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
    throw Error(
        fmt::format("linear: weight {} is {}, expected f32, f16 or bf16", shape_str(w.shape), dtype_name(w.dtype)));
  if (x.dtype != DType::f32 || y.dtype != DType::f32)
    throw Error(fmt::format("linear: x ({}) and y ({}) must be f32", dtype_name(x.dtype), dtype_name(y.dtype)));
  int64_t out = w.dim(0), in = w.dim(1);
  if (x.rank() < 1 || x.dim(-1) != in)
    throw Error(fmt::format("linear: x {} does not end in in={} of weight {}", shape_str(x.shape), in, shape_str(w.shape)));
  int64_t rows = x.numel() / in;
  if (y.numel() != rows * out || y.dim(-1) != out)
    throw Error(fmt::format("linear: y {} must be [..., {}] with {} rows", shape_str(y.shape), out, rows));
  if (bias && bias->defined() && bias->numel() != out)
    throw Error(fmt::format("linear: bias {} must have {} elements", shape_str(bias->shape), out));
  if (rows <= kGemvMaxRows && gemv_enabled()) {
    gemv(rt, x, w, y, rows, in, out, false);
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

void linear_swiglu(Runtime& rt, const Tensor& gu, const Tensor& w, Tensor& y) {
  if (w.rank() != 2) throw Error(fmt::format("linear_swiglu: weight must be [out,in], got {}", shape_str(w.shape)));
  const int64_t out = w.dim(0), in = w.dim(1);
  if (gu.rank() != 2 || gu.dim(1) != 2 * in || gu.dtype != DType::f32)
    throw Error(fmt::format("linear_swiglu: gate|up must be f32 [rows, {}] for weight {}, got {} {}", 2 * in,
                            shape_str(w.shape), shape_str(gu.shape), dtype_name(gu.dtype)));
  const int64_t rows = gu.dim(0);
  if (y.shape != Shape{rows, out} || y.dtype != DType::f32)
    throw Error(fmt::format("linear_swiglu: y must be f32 [{},{}], got {}", rows, out, shape_str(y.shape)));
  if (w.dtype != DType::f32 && w.dtype != DType::f16 && w.dtype != DType::bf16)
    throw Error(fmt::format("linear_swiglu: weight must be f32, f16 or bf16, got {}", dtype_name(w.dtype)));
  if (rows <= kGemvMaxRows && gemv_enabled()) {
    gemv(rt, gu, w, y, rows, in, out, true);
    return;
  }
  Tensor act = rt.empty({rows, in}, DType::f32, "swiglu product");
  ops::swiglu(rt, gu, gu, act, static_cast<int>(rows), static_cast<int>(in), static_cast<int>(2 * in), 0,
              static_cast<int>(in));
  linear(rt, act, w, nullptr, y);
}

}  // namespace dsocr

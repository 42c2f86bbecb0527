#include "runtime/gemm.h"

#include <clblast.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>


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

clblast::Transpose tr(Trans t) { return t == Trans::T ? clblast::Transpose::kYes : clblast::Transpose::kNo; }

void require_f32(const Tensor& t, const char* which) {
  if (t.dtype != DType::f32) throw Error(fmt::format("gemm: {} must be f32, got {}", which, dtype_name(t.dtype)));
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

}  // namespace dsocr

#include "runtime/ops/norm.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace dsocr::ops {
namespace {

constexpr size_t kWG = 256;  // WG in norm.cl
constexpr int kMaxNV = 8;    // named registers per work-item the kernels provide

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

// How the row kernels split a row of C (norm.cl's header): float4 vecs when C % 4 == 0, TPR = 1 << tlog
// work-items per row, NV vecs per work-item, or the wide (looping) kernels when a row does not fit
// 256 work-items x 8 vecs. TPR is the smallest power of two that needs at most `nv_pref` vecs per
// work-item (Tuning::norm_nv, default 4). Depends on C alone, so rms_norm and add_rms_norm always
// agree on it (their bit-identity).
struct RowPlan {
  bool wide = false;
  int vec = 1, tpr = 1, tlog = 0, nv = 1;
  Defines defines;
  size_t rows_per_group = 1;
};

RowPlan row_plan(int64_t C, int nv_pref) {
  RowPlan p;
  nv_pref = std::clamp(nv_pref, 1, kMaxNV);
  p.vec = C % 4 == 0 ? 4 : 1;
  const int64_t Cv = std::max<int64_t>(C / p.vec, 1);
  int64_t tpr = 1;
  while (tpr < static_cast<int64_t>(kWG) && ceil_div(Cv, tpr) > static_cast<size_t>(nv_pref)) tpr *= 2;
  const int64_t nv = ceil_div(Cv, tpr);
  if (nv > kMaxNV) {
    p.wide = true;
    return p;
  }
  p.tpr = static_cast<int>(tpr);
  p.nv = static_cast<int>(nv);
  p.rows_per_group = kWG / tpr;
  while ((1 << p.tlog) < p.tpr) ++p.tlog;
  p.defines = {{"NV", std::to_string(p.nv)}, {"VEC", std::to_string(p.vec)}};
  return p;
}

// The row kernel `name` (or its _wide variant) and its NDRange for `rows` rows of C.
struct RowLaunch {
  Kernel* k;
  cl::NDRange global;
  cl_int tlog;
};

RowLaunch row_launch(Runtime& rt, const std::string& name, int64_t rows, int64_t C) {
  RowPlan p = row_plan(C, rt.tuning().norm_nv);
  if (p.wide) return {&rt.kernel("norm.cl", name + "_wide_f32"), cl::NDRange(rows * kWG), 0};
  return {&rt.kernel("norm.cl", name + "_f32", p.defines), cl::NDRange(ceil_div(rows, p.rows_per_group) * kWG), p.tlog};
}

void check_rows(const char* op, int64_t rows, int64_t C) {
  if (rows > INT32_MAX || C > INT32_MAX)
    throw NotImplemented(fmt::format("{}: {} rows of {} too large for 32-bit sizes", op, rows, C));
}

}  // namespace

void layer_norm(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps) {
  if (x.rank() < 1) throw Error("layer_norm: x must have at least one dimension");
  int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  check_affine("layer_norm", x, y, w, &b, C);
  check_rows("layer_norm", rows, C);
  if (rows == 0 || C == 0) return;
  RowLaunch l = row_launch(rt, "layer_norm", rows, C);
  rt.launch(*l.k, l.global, cl::NDRange(kWG), x, w, b, y, static_cast<cl_int>(rows), static_cast<cl_int>(C), l.tlog,
            eps);
}

void layer_norm_2d(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps) {
  if (x.rank() != 4) throw Error(fmt::format("layer_norm_2d: x must be [N,C,H,W], got {}", shape_str(x.shape)));
  int64_t N = x.dim(0), C = x.dim(1), HW = x.dim(2) * x.dim(3);
  check_affine("layer_norm_2d", x, y, w, &b, C);
  check_rows("layer_norm_2d", N * HW, C);
  if (N == 0 || C == 0 || HW == 0) return;
  // LN2D_PX = 16 pixels per work-group by default (Tuning::ln2d_px; 64-byte runs of each channel row;
  // 8 and 32 were no faster on an H200), rounded down to a power of two; the first pass's values
  // stay in local memory when the [C][px] tile fits 24 KiB.
  int px = std::clamp(rt.tuning().ln2d_px, 1, 256);
  int p2 = 1;
  while (p2 * 2 <= px) p2 *= 2;
  px = p2;
  const size_t tile_bytes = static_cast<size_t>(C) * px * sizeof(float);
  const bool tile = tile_bytes <= 24 * 1024;
  auto& k =
      rt.kernel("norm.cl", "layer_norm_2d_f32", {{"LN2D_PX", std::to_string(px)}, {"LN2D_TILE", tile ? "1" : "0"}});
  rt.launch(k, cl::NDRange(ceil_div(HW, px) * kWG, N), cl::NDRange(kWG, 1), x, w, b, y, static_cast<cl_int>(C),
            static_cast<cl_int>(HW), eps, cl::Local(tile ? tile_bytes : sizeof(float)));
}

void rms_norm(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, float eps) {
  if (x.rank() < 1) throw Error("rms_norm: x must have at least one dimension");
  int64_t C = x.dim(-1), rows = x.numel() / std::max<int64_t>(C, 1);
  check_affine("rms_norm", x, y, w, nullptr, C);
  check_rows("rms_norm", rows, C);
  if (rows == 0 || C == 0) return;
  RowLaunch l = row_launch(rt, "rms_norm", rows, C);
  rt.launch(*l.k, l.global, cl::NDRange(kWG), x, w, y, static_cast<cl_int>(rows), static_cast<cl_int>(C), l.tlog, eps);
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
  check_rows("add_rms_norm", rows, C);
  if (rows == 0 || C == 0) return;
  RowLaunch l = row_launch(rt, "add_rms_norm", rows, C);
  rt.launch(*l.k, l.global, cl::NDRange(kWG), x, a, b ? *b : a, static_cast<cl_int>(b ? 2 : 1), w, y,
            static_cast<cl_int>(rows), static_cast<cl_int>(C), l.tlog, eps);
}

}  // namespace dsocr::ops

#include "runtime/ops/conv2d.h"

#include <fmt/format.h>

#include "runtime/gemm.h"
#include "runtime/ops/convert.h"

namespace dsocr::ops {
namespace {

int64_t out_size(int64_t in, int64_t k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

// A 2-D work-group of 256 work-items over (a, b): a as wide as na needs (a power of two, at most 64).
cl::NDRange local_2d(int64_t na) {
  size_t lx = 1;
  while (lx < 64 && static_cast<int64_t>(lx) < na) lx *= 2;
  return cl::NDRange(lx, 256 / lx, 1);
}

// cols [N, C*kh*kw, Ho*Wo] from x [N,C,H,W] (conv2d.cl: im2col_patch_f32 for non-overlapping
// unpadded patches, im2col_f32 otherwise).
void im2col(Runtime& rt, const Tensor& x, int64_t kh, int64_t kw, int stride, int pad, int64_t Ho, int64_t Wo,
            Tensor& cols) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const cl::NDRange local = local_2d(Wo);
  if (kh == stride && kw == stride && pad == 0) {
    auto& k = rt.kernel("conv2d.cl", "im2col_patch_f32");
    rt.launch(k, cl::NDRange(round_up(Wo, local[0]), round_up(Ho * stride, local[1]), N * C), local, x, cols, (cl_int)H,
              (cl_int)W, (cl_int)stride, (cl_int)Ho, (cl_int)Wo);
    return;
  }
  auto& k = rt.kernel("conv2d.cl", "im2col_f32");
  rt.launch(k, cl::NDRange(round_up(Wo, local[0]), round_up(Ho, local[1]), N * C), local, x, cols, (cl_int)H, (cl_int)W,
            (cl_int)kh, (cl_int)kw, (cl_int)stride, (cl_int)pad, (cl_int)Ho, (cl_int)Wo);
}

void check_x(const char* op, const Tensor& x, int stride, int padding) {
  if (x.rank() != 4 || x.dtype != DType::f32)
    throw Error(fmt::format("{}: x must be f32 [N,C,H,W], got {} {}", op, dtype_name(x.dtype), shape_str(x.shape)));
  if (stride < 1 || padding < 0)
    throw Error(fmt::format("{}: stride {} must be >= 1 and padding {} >= 0", op, stride, padding));
}

}  // namespace

void conv2d(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, int stride, int padding) {
  check_x("conv2d", x, stride, padding);
  if (w.rank() != 4 || w.dim(1) != x.dim(1))
    throw Error(fmt::format("conv2d: weight {} must be [O,{},kh,kw] for x {}", shape_str(w.shape), x.dim(1),
                            shape_str(x.shape)));
  const int64_t N = x.dim(0), C = x.dim(1), O = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t Ho = out_size(x.dim(2), kh, stride, padding), Wo = out_size(x.dim(3), kw, stride, padding);
  if (Ho < 1 || Wo < 1)
    throw Error(fmt::format("conv2d: kernel {}x{} larger than the padded input {}", kh, kw, shape_str(x.shape)));
  Shape ys{N, O, Ho, Wo};
  if (y.shape != ys || y.dtype != DType::f32)
    throw Error(
        fmt::format("conv2d: y must be f32 {}, got {} {}", shape_str(ys), dtype_name(y.dtype), shape_str(y.shape)));
  if (bias && bias->defined() && (bias->numel() != O || bias->dtype != DType::f32))
    throw Error(fmt::format("conv2d: bias {} must be f32 with {} elements", shape_str(bias->shape), O));

  Tensor wf = w;
  if (w.dtype == DType::f16) {
    wf = rt.empty(w.shape, DType::f32, "conv2d fp16 weight widened");
    widen_to_f32(rt, w, wf);
  }
  const int64_t K = C * kh * kw, L = Ho * Wo;
  // A 1x1 stride-1 unpadded convolution reads x as it is; anything else goes through im2col.
  Tensor cols = x;
  if (!(kh == 1 && kw == 1 && stride == 1 && padding == 0)) {
    cols = rt.empty({N, K, L}, DType::f32, "conv2d im2col");
    im2col(rt, x, kh, kw, stride, padding, Ho, Wo, cols);
  }
  // y[n] [O,L] = W [O,K] x cols[n] [K,L], all images in one batched GEMM (W shared: stride 0).
  GemmArgs g;
  g.m = O;
  g.n = L;
  g.k = K;
  g.lda = K;
  g.ldb = L;
  g.ldc = L;
  gemm_strided_batched(rt, g, wf, 0, cols, K * L, y, O * L, N);
  if (bias && bias->defined()) {
    auto& k = rt.kernel("conv2d.cl", "bias_rows_f32");
    rt.launch(k, cl::NDRange(round_up(L, 64), O, N), cl::NDRange(64, 1, 1), y, *bias, (cl_int)O, (cl_int)L);
  }
}

void unfold(Runtime& rt, const Tensor& x, int kernel, int stride, int padding, Tensor& y) {
  check_x("unfold", x, stride, padding);
  if (kernel < 1) throw Error(fmt::format("unfold: kernel {} must be >= 1", kernel));
  const int64_t N = x.dim(0), C = x.dim(1);
  const int64_t Ho = out_size(x.dim(2), kernel, stride, padding), Wo = out_size(x.dim(3), kernel, stride, padding);
  if (Ho < 1 || Wo < 1)
    throw Error(fmt::format("unfold: kernel {} larger than the padded input {}", kernel, shape_str(x.shape)));
  Shape ys{N, C * kernel * kernel, Ho * Wo};
  if (y.shape != ys || y.dtype != DType::f32)
    throw Error(
        fmt::format("unfold: y must be f32 {}, got {} {}", shape_str(ys), dtype_name(y.dtype), shape_str(y.shape)));
  im2col(rt, x, kernel, kernel, stride, padding, Ho, Wo, y);
}

}  // namespace dsocr::ops

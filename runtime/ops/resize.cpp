#include "runtime/ops/resize.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>

namespace dsocr::ops {
namespace {

constexpr size_t kWG = 256;

// Keys cubic with a = -0.5 exactly as ATen's HelperInterpCubic::aa_filter<float>: the first branch is
// evaluated in double (a is a double literal), the second in float until the final "* a".
float aa_cubic(float x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return static_cast<float>(((a + 2.0) * x - (a + 3.0)) * x * x + 1);
  if (x < 2.0) return static_cast<float>((((x - 5) * x + 8) * x - 4) * a);
  return 0.0f;
}

// One axis of the antialiased resampling (in -> out): for output i the taps [xmin, xmin+n) and their
// normalised weights w[i*K + j] (zero-padded to K taps). Follows ATen's
// _compute_index_ranges_weights / _compute_indices_min_size_weights_aa with scalar_t = float
// (align_corners = False, no explicit scale), including its mixed float/double promotions.
struct AaAxis {
  std::vector<int32_t> idx;  // [out, 2]: xmin, n
  std::vector<float> w;      // [out, K]
  int K = 0;
};

AaAxis aa_axis(int64_t in, int64_t out) {
  AaAxis ax;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float support = scale >= 1.0 ? static_cast<float>((4 * 0.5) * scale) : static_cast<float>(4 * 0.5);
  ax.K = static_cast<int>(std::ceil(support)) * 2 + 1;
  const float invscale = scale >= 1.0 ? static_cast<float>(1.0 / scale) : 1.0f;
  ax.idx.assign(out * 2, 0);
  ax.w.assign(out * ax.K, 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const float center = static_cast<float>(scale * (i + 0.5));
    const int64_t xmin = std::max(static_cast<int64_t>(center - support + 0.5), int64_t{0});
    int64_t n = std::min(static_cast<int64_t>(center + support + 0.5), in) - xmin;
    n = std::clamp(n, int64_t{0}, static_cast<int64_t>(ax.K));
    float* w = &ax.w[i * ax.K];
    float total = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = aa_cubic(static_cast<float>((static_cast<float>(j + xmin) - center + 0.5) * invscale));
      total += w[j];
    }
    if (total != 0.0f)
      for (int64_t j = 0; j < n; ++j) w[j] /= total;
    ax.idx[2 * i] = static_cast<int32_t>(xmin);
    ax.idx[2 * i + 1] = static_cast<int32_t>(n);
  }
  return ax;
}

// x and y: f32, rank `rank`, equal leading dims (all but the `spatial` last ones), every dim positive.
void check_resize(const char* op, const Tensor& x, const Tensor& y, int rank, int spatial, const char* layout) {
  auto positive = [](const Tensor& t) {
    return std::all_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d > 0; });
  };
  if (!x.defined() || x.rank() != rank || x.dtype != DType::f32 || !positive(x))
    throw Error(fmt::format("{}: x is {} {}, expected f32 {} with positive sizes", op,
                            x.defined() ? dtype_name(x.dtype) : "undefined", shape_str(x.shape), layout));
  Shape want(x.shape.begin(), x.shape.end() - spatial);
  std::string want_str = shape_str(want);
  want_str.pop_back();
  want_str += spatial == 2 ? ",oh,ow]" : ",out]";
  bool ok = y.defined() && y.rank() == rank && y.dtype == DType::f32 && positive(y) &&
            std::equal(want.begin(), want.end(), y.shape.begin());
  if (!ok)
    throw Error(fmt::format("{}: y is {} {}, expected f32 {} with positive sizes (x is {})", op,
                            y.defined() ? dtype_name(y.dtype) : "undefined", shape_str(y.shape), want_str,
                            shape_str(x.shape)));
  if (x.numel() > INT32_MAX || y.numel() > INT32_MAX)
    throw NotImplemented(
        fmt::format("{}: x {} / y {} too large for 32-bit indices", op, shape_str(x.shape), shape_str(y.shape)));
}

}  // namespace

void resize_bicubic_aa(Runtime& rt, const Tensor& x, Tensor& y) {
  check_resize("resize_bicubic_aa", x, y, 4, 2, "[N,C,H,W]");
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3), oh = y.dim(2), ow = y.dim(3);
  if (NC * H * ow > INT32_MAX)
    throw NotImplemented(
        fmt::format("resize_bicubic_aa: intermediate [{},{},{}] too large for 32-bit indices", NC, H, ow));
  // As ATen, an axis whose size does not change is skipped (its weights would be exactly 0,1,0,0).
  if (H == oh && W == ow) {
    rt.copy(x, y, x.bytes());
    return;
  }
  Tensor t = x;  // [N,C,H,ow]
  if (W != ow) {
    AaAxis ax = aa_axis(W, ow);
    Tensor idx = rt.upload(ax.idx.data(), {ow, 2}, DType::i32, "resize_bicubic_aa x taps");
    Tensor wt = rt.upload(ax.w.data(), {ow, ax.K}, DType::f32, "resize_bicubic_aa x weights");
    if (H != oh) t = rt.empty({x.dim(0), x.dim(1), H, ow}, DType::f32, "resize_bicubic_aa horizontal pass");
    Tensor& dst = H != oh ? t : y;
    const int64_t total = NC * H * ow;
    auto& k = rt.kernel("resize.cl", "resize_bicubic_aa_h_f32");
    rt.launch(k, cl::NDRange(round_up(total, kWG)), cl::NDRange(kWG), x, idx, wt, dst, static_cast<cl_int>(W),
              static_cast<cl_int>(ow), static_cast<cl_int>(ax.K), static_cast<cl_int>(total));
  }
  if (H != oh) {
    AaAxis ay = aa_axis(H, oh);
    Tensor idx = rt.upload(ay.idx.data(), {oh, 2}, DType::i32, "resize_bicubic_aa y taps");
    Tensor wt = rt.upload(ay.w.data(), {oh, ay.K}, DType::f32, "resize_bicubic_aa y weights");
    const int64_t total = NC * oh * ow;
    auto& k = rt.kernel("resize.cl", "resize_bicubic_aa_v_f32");
    rt.launch(k, cl::NDRange(round_up(total, kWG)), cl::NDRange(kWG), t, idx, wt, y, static_cast<cl_int>(H),
              static_cast<cl_int>(oh), static_cast<cl_int>(ow), static_cast<cl_int>(ay.K), static_cast<cl_int>(total));
  }
}

void resize_linear(Runtime& rt, const Tensor& x, Tensor& y) {
  check_resize("resize_linear", x, y, 3, 1, "[N,C,L]");
  const int64_t L = x.dim(2), out = y.dim(2), total = y.numel();
  const float scale = static_cast<float>(L) / static_cast<float>(out);  // ATen's area_pixel_compute_scale<float>
  auto& k = rt.kernel("resize.cl", "resize_linear_f32");
  rt.launch(k, cl::NDRange(round_up(total, kWG)), cl::NDRange(kWG), x, y, static_cast<cl_int>(L),
            static_cast<cl_int>(out), scale, static_cast<cl_int>(total));
}

}  // namespace dsocr::ops

#include "runtime/ops/resize.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

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

AaAxis identity_axis(int64_t n) {  // an axis that keeps its size: ATen skips it; x * 1 is exact
  AaAxis ax;
  ax.K = 1;
  ax.idx.resize(n * 2);
  for (int64_t i = 0; i < n; ++i) {
    ax.idx[2 * i] = static_cast<int32_t>(i);
    ax.idx[2 * i + 1] = 1;
  }
  ax.w.assign(n, 1.0f);
  return ax;
}

void release_host_words(cl_event, cl_int, void* p) { delete static_cast<std::vector<int32_t>*>(p); }

// Uploads `words` without blocking the host or draining the queue (a blocking write would: the
// resize's tables cost more than its kernels that way). The host copy is freed by the write's
// completion callback.
Tensor upload_async(Runtime& rt, std::vector<int32_t> words, const char* what) {
  Tensor t = rt.empty({static_cast<int64_t>(words.size())}, DType::i32, what);
  auto* host = new std::vector<int32_t>(std::move(words));
  cl_event ev = nullptr;
  cl_int err = clEnqueueWriteBuffer(rt.queue()(), t.mem()(), CL_FALSE, 0, host->size() * sizeof(int32_t), host->data(),
                                    0, nullptr, &ev);
  if (err != CL_SUCCESS) {
    delete host;
    check_cl(err, "clEnqueueWriteBuffer", what);
  }
  err = clSetEventCallback(ev, CL_COMPLETE, release_host_words, host);
  if (err != CL_SUCCESS) {
    clWaitForEvents(1, &ev);
    delete host;
  }
  clReleaseEvent(ev);
  check_cl(err, "clSetEventCallback", what);
  return t;
}

// The fused kernel's work-group bands over the output rows (resize.cl): (oy0, oy1, ty0, ty1) each, a
// band's t rows at most kTileFloats x ow and modest loop counts per work-item; empty when a single
// output row does not fit (then the two-pass kernels run).
constexpr int64_t kWGFused = 256;          // RS_WG
constexpr int64_t kTileFloats = 6 * 1024;  // 24 KiB of local memory
constexpr int64_t kMaxTaps = 16 * 1024;    // tap products per work-item and pass (llvmpipe's loop limit)

std::vector<int32_t> aa_bands(const AaAxis& ax, const AaAxis& ay, int64_t oh, int64_t ow, int64_t max_rows,
                              int64_t& tile) {
  std::vector<int32_t> bands;
  tile = 0;
  auto fits = [&](int64_t trows, int64_t orows) {
    return trows * ow <= kTileFloats && trows * ow * ax.K <= kWGFused * kMaxTaps &&
           orows * ow * ay.K <= kWGFused * kMaxTaps;
  };
  for (int64_t oy0 = 0; oy0 < oh;) {
    const int64_t ty0 = ay.idx[2 * oy0];
    int64_t ty1 = ty0 + ay.idx[2 * oy0 + 1], oy1 = oy0 + 1;
    if (!fits(ty1 - ty0, 1)) return {};
    for (; oy1 < oh && oy1 - oy0 < max_rows; ++oy1) {  // ymin is non-decreasing in oy: ty0 stays the first
      const int64_t e = std::max<int64_t>(ty1, ay.idx[2 * oy1] + ay.idx[2 * oy1 + 1]);
      if (!fits(e - ty0, oy1 + 1 - oy0)) break;
      ty1 = e;
    }
    bands.insert(bands.end(), {static_cast<int32_t>(oy0), static_cast<int32_t>(oy1), static_cast<int32_t>(ty0),
                               static_cast<int32_t>(ty1)});
    tile = std::max(tile, (ty1 - ty0) * ow);
    oy0 = oy1;
  }
  return bands;
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
  const AaAxis ax = W != ow ? aa_axis(W, ow) : identity_axis(W);
  const AaAxis ay = H != oh ? aa_axis(H, oh) : identity_axis(H);
  // Enough work-groups to fill the device when there are few planes: split the output rows.
  const int64_t want_groups = 2 * std::max<int64_t>(rt.device().compute_units, 16);
  const int64_t splits = std::min<int64_t>(oh, static_cast<int64_t>(ceil_div(want_groups, NC)));
  int64_t tile = 0;
  const std::vector<int32_t> bands = aa_bands(ax, ay, oh, ow, static_cast<int64_t>(ceil_div(oh, splits)), tile);
  // One table buffer (resize.cl): x taps, x weights, y taps, y weights, bands.
  std::vector<int32_t> tab(ax.idx);
  auto append_f32 = [&tab](const std::vector<float>& v) {
    const size_t at = tab.size();
    tab.resize(at + v.size());
    std::memcpy(&tab[at], v.data(), v.size() * sizeof(float));
  };
  const int32_t xw = static_cast<int32_t>(tab.size());
  append_f32(ax.w);
  const int32_t yi = static_cast<int32_t>(tab.size());
  tab.insert(tab.end(), ay.idx.begin(), ay.idx.end());
  const int32_t yw = static_cast<int32_t>(tab.size());
  append_f32(ay.w);
  const int32_t bd = static_cast<int32_t>(tab.size());
  tab.insert(tab.end(), bands.begin(), bands.end());
  const Tensor tt = upload_async(rt, std::move(tab), "resize_bicubic_aa tables");
  const cl_int cH = static_cast<cl_int>(H), cW = static_cast<cl_int>(W), coh = static_cast<cl_int>(oh),
               cow = static_cast<cl_int>(ow), Kx = ax.K, Ky = ay.K;
  if (!bands.empty()) {
    auto& k = rt.kernel("resize.cl", "resize_bicubic_aa_f32");
    rt.launch(k, cl::NDRange(bands.size() / 4 * kWGFused, NC), cl::NDRange(kWGFused, 1), x, tt, y, cH, cW, coh, cow, Kx,
              Ky, xw, yi, yw, bd, cl::Local(tile * sizeof(float)));
    return;
  }
  // Two passes through t [N,C,H,ow] (or straight into y when an axis keeps its size, as ATen).
  Tensor t = x;
  if (W != ow) {
    if (H != oh) t = rt.empty({x.dim(0), x.dim(1), H, ow}, DType::f32, "resize_bicubic_aa horizontal pass");
    Tensor& dst = H != oh ? t : y;
    const int64_t total = NC * H * ow;
    auto& k = rt.kernel("resize.cl", "resize_bicubic_aa_h_f32");
    rt.launch(k, cl::NDRange(round_up(total, kWG)), cl::NDRange(kWG), x, tt, dst, cW, cow, Kx, xw,
              static_cast<cl_int>(total));
  }
  if (H != oh) {
    const int64_t total = NC * oh * ow;
    auto& k = rt.kernel("resize.cl", "resize_bicubic_aa_v_f32");
    rt.launch(k, cl::NDRange(round_up(total, kWG)), cl::NDRange(kWG), t, tt, y, cH, coh, cow, Ky, yi, yw,
              static_cast<cl_int>(total));
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

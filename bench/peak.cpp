#include <algorithm>
#include <chrono>

#include "bench/bench.h"
#include "runtime/gemm.h"
#include "runtime/ops/elementwise.h"

namespace dsocr::bench {

double KernelResult::pct_peak(const Peak& p) const {
  if (bound == "compute") return p.sgemm_gflops > 0 ? 100.0 * gflops() / p.sgemm_gflops : 0;
  return p.copy_gbs > 0 ? 100.0 * gbs() / p.copy_gbs : 0;
}

double time_device_ms(Runtime& rt, const Options& opts, const std::function<void()>& fn) {
  for (int i = 0; i < opts.warmup; ++i) fn();
  rt.take_timings();
  std::vector<double> ms;
  for (int i = 0; i < std::max(opts.runs, 1); ++i) {
    // Device time from a marker before to a marker after: every kernel in between, including
    // CLBlast's internal ones (its own event covers only its last kernel).
    auto t0 = std::chrono::steady_clock::now();
    cl::Event a = rt.marker();
    fn();
    cl::Event b = rt.marker();
    rt.finish();
    double us = Runtime::elapsed_us(a, b);
    // Drivers without profiling timestamps (Mesa 22's rusticl reports zeros): wall clock instead.
    if (us <= 0) us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    ms.push_back(us / 1000.0);
    rt.take_timings();  // drop the per-launch records
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

Peak measure_peak(Runtime& rt, const Options& opts) {
  Peak p;
  // Copy: a quarter of the largest allocation, at most 1 GiB (64 MiB for small runs).
  int64_t bytes = std::min<int64_t>(opts.small ? (64 << 20) : (1 << 30), rt.device().max_alloc / 4);
  bytes = bytes / 4 * 4;
  Tensor a = rt.empty({bytes / 4}, DType::f32, "peak copy src"), b = rt.empty({bytes / 4}, DType::f32, "peak copy dst");
  ops::fill_uniform(rt, a, 1, 0.f, 1.f);
  double ms = time_device_ms(rt, opts, [&] { rt.copy(a, b, static_cast<size_t>(bytes)); });
  p.copy_bytes = bytes;
  p.copy_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
  // SGEMM: the best of CLBlast's rate over square sizes n/4, n/2 and n (n = 4096, 1024 small):
  // CLBlast takes its direct kernel for small sizes and the tiled one for large ones, and on a
  // device it has no tuning for (a CPU through PoCL, say) either may be far faster.
  const int64_t n_max = opts.small ? 1024 : 4096;
  for (int64_t n = n_max / 4; n <= n_max; n *= 2) {
    Tensor x = rt.empty({n, n}), y = rt.empty({n, n}), z = rt.empty({n, n});
    ops::fill_uniform(rt, x, 2, 0.f, 1.f);
    ops::fill_uniform(rt, y, 3, 0.f, 1.f);
    GemmArgs g;
    g.m = g.n = g.k = g.lda = g.ldb = g.ldc = static_cast<size_t>(n);
    ms = time_device_ms(rt, opts, [&] { gemm(rt, g, x, y, z); });
    const double gflops = 2.0 * n * n * n / (ms * 1e-3) / 1e9;
    p.sgemm_by_n.emplace_back(n, gflops);
    if (gflops > p.sgemm_gflops) {
      p.sgemm_gflops = gflops;
      p.gemm_n = n;
    }
  }
  return p;
}

}  // namespace dsocr::bench

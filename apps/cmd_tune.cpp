// dsocr tune: CLBlast's auto-tuner for SGEMM on one device; the result is stored beside the
// program cache and applied by every later run on that device (runtime/gemm_tuning.h).
#include <fmt/format.h>

#include "apps/commands.h"
#include "runtime/gemm_tuning.h"
#include "runtime/runtime.h"

namespace dsocr {

int cmd_tune(const std::vector<std::string>& argv) {
  Args a(argv);
  RuntimeOptions ro;
  ro.device = a.value("--device");
  const long size = std::stol(a.value("--size", "1024"));
  const double fraction = std::stod(a.value("--fraction", "0.05"));
  const bool helpers = a.flag("--all");
  if (!a.positional().empty() || size < 256 || size > 8192 || size % 256 != 0 || !(fraction > 0 && fraction <= 1))
    throw UsageError(
        "usage: dsocr tune [--device SPEC] [--size N (a multiple of 256 up to 8192, default 1024)] "
        "[--fraction F (0..1], default 0.05)] [--all (also the direct and copy/pad/transpose kernels)]");
  Runtime rt(ro);
  if (!rt.gemm_tuning().empty()) fmt::print("before: {}\n", rt.gemm_tuning());
  fmt::print("tuning CLBlast SGEMM on {} at {}^3, {:.3g} of Xgemm's search space...\n", rt.device().label(), size,
             fraction);
  std::fflush(stdout);
  GemmTuning t = tune_gemm(rt, size, size, size, fraction, helpers);
  for (auto& [name, p] : t.kernels) {
    std::string s;
    for (auto& [k, v] : p) s += fmt::format(" {}={}", k, v);
    fmt::print("  {}:{}\n", name, s);
  }
  const std::string path = save_gemm_tuning(rt.device(), t);
  fmt::print("tuned in {:.0f} s; saved to {} (DSOCR_GEMM_TUNING=0 ignores it)\n", t.seconds, path);
  return 0;
}

}  // namespace dsocr

// dsocr tune: CLBlast's auto-tuner for SGEMM on one device; the result is stored beside the
// program cache and applied by every later run on that device (runtime/gemm_tuning.h).
#include <fmt/format.h>

#include <cstdio>

#include "apps/commands.h"
#include "apps/runtime_setup.h"
#include "runtime/gemm_tuning.h"
#include "runtime/runtime.h"

namespace dsocr {
namespace {

const char* kUsage =
    R"(usage: dsocr tune [--device SPEC] [--size N] [--fraction F] [--all]

Runs CLBlast's own tuner for its main SGEMM kernel on the device (minutes on a GPU) and stores the
best parameters beside the program cache (clblast-tuning-<hash>.json); every later run on that
device applies them after checking them. DSOCR_GEMM_TUNING=0 ignores a stored tuning.
  --device SPEC   OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
  --size N        the square GEMM tuned for: a multiple of 256 up to 8192 (default 1024)
  --fraction F    the share of Xgemm's search space tried, in (0, 1] (default 0.05)
  --all           also the direct GEMM and the copy/pad/transpose kernels
Exit status: 0, 1 the tuner failed, 2 usage.
)";

}  // namespace

int cmd_tune(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  RuntimeOptions ro;
  ro.device = a.value("--device");
  const long size = static_cast<long>(a.integer("--size", 1024, 256, 8192));
  if (size % 256 != 0) throw UsageError(fmt::format("--size {}: must be a multiple of 256", size));
  const double fraction = a.number("--fraction", 0.05, 0.0, 1.0);
  if (fraction <= 0) throw UsageError("--fraction: must be more than 0 (and at most 1)");
  const bool helpers = a.flag("--all");
  if (!a.positional().empty()) throw UsageError("dsocr tune takes no arguments (see dsocr tune --help)");
  std::unique_ptr<Runtime> opened = open_runtime(ro);
  Runtime& rt = *opened;
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

// dsocr parity: golden case files (reference/, docs/golden-contract.md) run on a device.
#include <fmt/format.h>

#include <cstdio>

#include "apps/commands.h"
#include "apps/runtime_setup.h"
#include "parity/parity.h"

namespace dsocr {
namespace {

const char* kUsage =
    R"(usage: dsocr parity CASE.h5 [CASE.h5 ...] [--device SPEC] [--verbose]

Runs golden case files written by the PyTorch reference (reference/, bash scripts/goldens.sh) on a
device and compares every output: one line per output (max_abs, max_rel, rel_l2, PASS/FAIL) and
"N passed, M failed". Model cases run the whole chain from their inputs and compare every tap.
  --device SPEC   OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
  --verbose       the device, and more detail per output
Exit status: 0 every output passes, 1 an output fails, 2 a file that cannot be run (or usage).
)";

}  // namespace

int cmd_parity(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  RuntimeOptions o;
  o.device = a.value("--device");
  ParityOptions p;
  p.verbose = a.flag("--verbose");
  auto files = a.positional();
  if (files.empty()) throw UsageError("usage: dsocr parity CASE.h5 [CASE.h5 ...] [--device SPEC] [--verbose]");
  std::unique_ptr<Runtime> rt = open_runtime(o);
  if (p.verbose) fmt::print("device: {}\n", rt->device().label());
  return run_parity(*rt, files, p).exit_code();
}

}  // namespace dsocr

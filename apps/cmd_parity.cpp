#include <fmt/format.h>

#include "apps/commands.h"
#include "model/parity.h"

namespace dsocr {

int cmd_parity(const std::vector<std::string>& argv) {
  Args a(argv);
  RuntimeOptions o;
  o.device = a.value("--device");
  ParityOptions p;
  p.verbose = a.flag("--verbose");
  auto files = a.positional();
  if (files.empty()) throw UsageError("usage: dsocr parity CASE.h5 [CASE.h5 ...] [--device SPEC] [--verbose]");
  Runtime rt(o);
  if (p.verbose) fmt::print("device: {}\n", rt.device().label());
  return run_parity(rt, files, p).exit_code();
}

}  // namespace dsocr

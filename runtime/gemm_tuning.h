// CLBlast tuned for the device at hand: `dsocr tune` runs CLBlast's own auto-tuner (TuneXgemm and
// the helper kernels of its indirect GEMM) once per device and stores the best parameters beside
// the program cache; every later dsocr command on that device applies them
// (clblast::OverrideParameters) right after creating its Runtime (apps/runtime_setup.h), before its
// first GEMM (a Runtime applies nothing by itself). CLBlast's built-in database has no entry for
// many devices (an H200, an Apple GPU under Asahi), which then run generic defaults.
//
// File: <cache dir>/clblast-tuning-<hash of device, driver, platform>.json, written atomically:
//   {"format": "dsocr-clblast-tuning-1", "device", "driver", "platform",
//    "kernels": {"Xgemm": {"MWG": 64, ...}, "Copy": {...}, ...}, "tuned": {m, n, k, fraction, seconds}}
// Tuning::gemm_tuning off (DSOCR_GEMM_TUNING=0) ignores it.
#pragma once
#include <cstddef>
#include <map>
#include <string>

#include "runtime/device.h"

namespace dsocr {

class Runtime;

using KernelParams = std::map<std::string, size_t>;

struct GemmTuning {
  std::map<std::string, KernelParams> kernels;  // CLBlast kernel name -> parameters
  size_t m = 0, n = 0, k = 0;
  double fraction = 0, seconds = 0;
};

// Where the tuning of dev is stored ("" when there is no cache folder).
std::string gemm_tuning_path(const DeviceInfo& dev);

// Applies the stored tuning of rt's device, if any, then checks a small SGEMM against the host;
// a file that is corrupt, made for another device, or whose parameters CLBlast refuses or compute
// wrongly is ignored (CLBlast's defaults restored). Returns what happened, for logs ("" when no file);
// callers record it with rt.set_gemm_tuning. CLBlast's parameters are per device and process, so
// this affects every Runtime on the device.
std::string apply_gemm_tuning(Runtime& rt);

// Runs CLBlast's tuner for its main SGEMM kernel (Xgemm) on rt's device at m x n x k, sampling
// `fraction` of the search space, and with `helpers` also those of the direct kernel (small
// products) and of the copy/pad/transpose kernels the indirect path uses. Returns the best
// parameters found. Minutes on a GPU, far longer on a CPU device.
GemmTuning tune_gemm(Runtime& rt, size_t m, size_t n, size_t k, double fraction, bool helpers = false);

// Writes t for dev (atomically: a temporary file renamed into place); returns the path.
std::string save_gemm_tuning(const DeviceInfo& dev, const GemmTuning& t);

}  // namespace dsocr

// How a dsocr command opens its device: the one place where the environment's tuning knobs are
// read (Tuning::from_env) and where the stored CLBlast tuning (runtime/gemm_tuning.h) is applied.
// The library itself (runtime/, model/, ...) reads neither.
#pragma once
#include <memory>

#include "runtime/runtime.h"

namespace dsocr {

// Creates the Runtime for ro. ro.tuning, when unset, is filled with Tuning::from_env() (throws
// Error naming a variable whose value is refused); then, when the tuning's gemm_tuning is on, the
// stored CLBlast tuning of the device is applied and checked, and what happened is recorded in
// Runtime::gemm_tuning() ("" when there is no file or gemm_tuning is off).
std::unique_ptr<Runtime> open_runtime(RuntimeOptions ro);

}  // namespace dsocr

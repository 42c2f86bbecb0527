#include "apps/runtime_setup.h"

#include "runtime/gemm_tuning.h"

namespace dsocr {

std::unique_ptr<Runtime> open_runtime(RuntimeOptions ro) {
  if (!ro.tuning) ro.tuning = Tuning::from_env();
  auto rt = std::make_unique<Runtime>(ro);
  if (rt->tuning().gemm_tuning) rt->set_gemm_tuning(apply_gemm_tuning(*rt));
  return rt;
}

}  // namespace dsocr

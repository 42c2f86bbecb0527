// main() for every op test executable: `test_X [--device SPEC] [gtest flags]`.
// RUSTICL_ENABLE defaults to llvmpipe so that rusticl's CPU device is visible.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "harness/harness.h"
#include "runtime/gemm_tuning.h"

namespace dsocr::test {
namespace {
std::string g_device;
std::unique_ptr<Runtime> g_rt;
}  // namespace

// Opened as the dsocr command opens its device (apps/runtime_setup.cpp, not linked into the
// tests): the environment's tuning knobs (DSOCR_SDPA_TILES=1,1 test_sdpa, say) and the device's
// stored CLBlast tuning apply.
Runtime& rt() {
  if (!g_rt) {
    RuntimeOptions o;
    o.device = g_device;
    o.tuning = Tuning::from_env();
    g_rt = std::make_unique<Runtime>(o);
    if (g_rt->tuning().gemm_tuning) g_rt->set_gemm_tuning(apply_gemm_tuning(*g_rt));
  }
  return *g_rt;
}

}  // namespace dsocr::test

int main(int argc, char** argv) {
  setenv("RUSTICL_ENABLE", "llvmpipe", 0);
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) dsocr::test::g_device = argv[++i];
    else if (a.rfind("--device=", 0) == 0) dsocr::test::g_device = a.substr(9);
  }
  try {
    auto& rt = dsocr::test::rt();
    fmt::print("device under test: {} ({}, driver {})\n", rt.device().label(), rt.device().platform_name,
               rt.device().driver_version);
  } catch (const std::exception& e) {
    fmt::print(stderr, "cannot open the device under test: {}\n", e.what());
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  fmt::print("{}\n", dsocr::test::rt().programs().summary());
  dsocr::test::g_rt.reset();
  return rc;
}

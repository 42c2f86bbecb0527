// runtime/gemm_tuning: stored CLBlast tunings are applied only when they belong to the device and
// give a correct SGEMM; anything else is reported and ignored, with CLBlast's defaults restored.
// (The tuner itself, minutes of kernel compiles, runs on GPUs through `dsocr tune`, not here.)
#include <clblast.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/harness.h"
#include "runtime/gemm.h"
#include "runtime/gemm_tuning.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

namespace fs = std::filesystem;

// A private cache folder for the test (DSOCR_CACHE_DIR is read at every call).
struct CacheDir {
  fs::path dir;
  CacheDir() {
    dir = fs::temp_directory_path() / fs::path("dsocr-tuning-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    setenv("DSOCR_CACHE_DIR", dir.c_str(), 1);
  }
  ~CacheDir() {
    unsetenv("DSOCR_CACHE_DIR");
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

KernelParams current(const std::string& kernel) {
  std::unordered_map<std::string, size_t> p;
  EXPECT_EQ(clblast::RetrieveParameters(rt().device().device, kernel, clblast::Precision::kSingle, p),
            clblast::StatusCode::kSuccess);
  return KernelParams(p.begin(), p.end());
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// A 77 x 45 x 33 SGEMM against double precision: whatever the tuning did, GEMMs stay right.
void expect_gemm_correct() {
  const int64_t M = 77, N = 45, K = 33;
  auto a = random_floats(M * K, 1), b = random_floats(K * N, 2);
  Tensor ta = rt().upload(a, {M, K}), tb = rt().upload(b, {K, N}), tc = rt().empty({M, N});
  GemmArgs g;
  g.m = M;
  g.n = N;
  g.k = K;
  g.lda = K;
  g.ldb = N;
  g.ldc = N;
  gemm(rt(), g, ta, tb, tc);
  std::vector<double> ref(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t l = 0; l < K; ++l) ref[i * N + j] += double(a[i * K + l]) * b[l * N + j];
  EXPECT_TRUE(all_close(rt().read_f32(tc), ref, {M, N}, 1e-5, 1e-4));
}

}  // namespace

TEST(gemm_tuning, stored_tuning_is_applied_and_checked) {
  CacheDir cache;
  EXPECT_EQ(apply_gemm_tuning(rt()), "");  // no file: nothing to say
  GemmTuning t;
  t.kernels["Xgemm"] = current("Xgemm");
  t.kernels["Copy"] = current("Copy");
  t.m = t.n = t.k = 64;
  t.fraction = 0.5;
  const std::string path = save_gemm_tuning(rt().device(), t);
  EXPECT_EQ(path, gemm_tuning_path(rt().device()));
  EXPECT_TRUE(fs::exists(path));
  const std::string note = apply_gemm_tuning(rt());
  EXPECT_NE(note.find("applied"), std::string::npos) << note;
  EXPECT_NE(note.find("Xgemm"), std::string::npos) << note;
  expect_gemm_correct();
}

TEST(gemm_tuning, bad_files_are_ignored) {
  CacheDir cache;
  const std::string path = gemm_tuning_path(rt().device());
  const KernelParams xgemm = current("Xgemm");
  auto file = [&](const nlohmann::json& kernels, const std::string& device) {
    nlohmann::json j = {{"format", "dsocr-clblast-tuning-1"},
                        {"device", device},
                        {"driver", rt().device().driver_version},
                        {"platform", rt().device().platform_name},
                        {"kernels", kernels}};
    return j.dump();
  };
  struct Case {
    std::string text, expect;
  };
  nlohmann::json unknown_key = {{"Xgemm", {{"NOT_A_PARAMETER", 4}}}};
  nlohmann::json unknown_kernel = {{"NoSuchKernel", {{"MWG", 4}}}};
  nlohmann::json negative = {{"Xgemm", {{"MWG", -64}}}};
  // Tiles that cannot build (MWG not a multiple of MDIMC * VWM: a zero-sized register tile, which
  // one compiler computes wrongly and another aborts on) are refused before CLBlast sees them.
  nlohmann::json broken = {{"Xgemm", {{"MWG", 7}, {"MDIMC", 8}, {"VWM", 4}, {"MDIMA", 8}}}};
  nlohmann::json huge_wg = {{"Copy", {{"COPY_DIMX", 4096}, {"COPY_DIMY", 4096}}}};
  for (const Case& c : {Case{"{not json", "ignored"}, Case{R"({"format": "other"})", "not a dsocr-clblast-tuning-1"},
                        Case{file(nlohmann::json::object(), "some other GPU"), "made for some other GPU"},
                        Case{file(unknown_key, rt().device().name), "'NOT_A_PARAMETER' is not"},
                        Case{file(unknown_kernel, rt().device().name), "no kernel 'NoSuchKernel'"},
                        Case{file(negative, rt().device().name), "'MWG' is not an unsigned"},
                        Case{file(broken, rt().device().name), "MWG = 7 is not a multiple of MDIMC*VWM = 32"},
                        Case{file(huge_wg, rt().device().name), "a work-group of 16777216 exceeds"}}) {
    write(path, c.text);
    const std::string note = apply_gemm_tuning(rt());
    EXPECT_NE(note.find("ignored"), std::string::npos) << note;
    EXPECT_NE(note.find(c.expect), std::string::npos) << note;
    EXPECT_EQ(current("Xgemm"), xgemm) << "CLBlast's parameters were not restored after: " << note;
    expect_gemm_correct();
  }
}

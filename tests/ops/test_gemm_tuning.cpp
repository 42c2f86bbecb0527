// runtime/gemm_tuning: stored CLBlast tunings are applied only when they belong to the device and
// give a correct SGEMM; anything else is reported and ignored, with CLBlast's defaults restored.
// (The tuner itself, minutes of kernel compiles, runs on GPUs through `dsocr tune`, not here.)
// runtime/tuning: the knobs parsed from the environment and followed through RuntimeOptions.
#include <clblast.h>
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "harness/harness.h"
#include "runtime/gemm.h"
#include "runtime/gemm_tuning.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/moe_decode.h"
#include "runtime/tuning.h"

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

// --- runtime/tuning: the knobs, parsed once from the environment -----------------------------

namespace {

const char* const kTuningVars[] = {"DSOCR_GEMV",      "DSOCR_SDPA_DECODE", "DSOCR_SDPA_TILES", "DSOCR_NORM_NV",
                                   "DSOCR_LN2D_PX",   "DSOCR_GEMV_LANES",  "DSOCR_MOE_LANES",  "DSOCR_GEMV_ROWS",
                                   "DSOCR_GEMV_WIDE", "DSOCR_BATCH_GEMM",  "DSOCR_POOL",       "DSOCR_GEMM_TUNING"};

// Every tuning variable unset for the test's duration; the values before are put back after.
struct CleanTuningEnv {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  CleanTuningEnv() {
    for (const char* v : kTuningVars) {
      const char* e = std::getenv(v);
      saved.emplace_back(v, e ? std::optional<std::string>(e) : std::nullopt);
      unsetenv(v);
    }
  }
  ~CleanTuningEnv() {
    for (auto& [name, value] : saved)
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
  }
};

// Tuning::from_env() with only `name` set to `value`.
Tuning with_env(const char* name, const char* value) {
  CleanTuningEnv clean;
  setenv(name, value, 1);
  return Tuning::from_env();
}

// A second Runtime on the device under test with `t` as its tuning.
std::unique_ptr<Runtime> runtime_with(const Tuning& t, bool timing = false) {
  RuntimeOptions o;
  o.device = std::to_string(rt().device().index);
  o.tuning = t;
  o.timing = timing;
  return std::make_unique<Runtime>(o);
}

}  // namespace

TEST(tuning, defaults_without_environment) {
  CleanTuningEnv clean;
  const Tuning t = Tuning::from_env();
  EXPECT_EQ(t, Tuning{});
  EXPECT_TRUE(t.from_environment.empty());
  EXPECT_TRUE(t.gemv && t.pool && t.gemm_tuning);
  EXPECT_FALSE(t.sdpa_decode || t.sdpa_tiles || t.gemv_lanes || t.moe_lanes || t.gemv_rows || t.gemv_wide ||
               t.batch_gemm_rows);
  // The device-type defaults (measured on an H100 and the CPU drivers, docs/targets.md).
  EXPECT_EQ(t.gemv_lanes_for(false), 32);
  EXPECT_EQ(t.gemv_lanes_for(true), 128);
  EXPECT_TRUE(t.gemv_wide_for(false));
  EXPECT_FALSE(t.gemv_wide_for(true));
  EXPECT_EQ(t.moe_lanes_for(false), 32);
  EXPECT_EQ(t.moe_lanes_for(true), 64);
  EXPECT_EQ(t.gemv_rows_for(false), 8);
  EXPECT_EQ(t.gemv_rows_for(true), 4);
  EXPECT_EQ(t.batch_gemm_for(false), 0);
  EXPECT_EQ(t.batch_gemm_for(true), 16);
  // Setting any device-dependent knob makes a different Tuning.
  for (auto set : std::vector<std::function<void(Tuning&)>>{
           [](Tuning& u) { u.gemv_lanes = 32; }, [](Tuning& u) { u.moe_lanes = 32; },
           [](Tuning& u) { u.gemv_rows = 8; }, [](Tuning& u) { u.gemv_wide = true; },
           [](Tuning& u) { u.batch_gemm_rows = 0; }}) {
    Tuning u;
    set(u);
    EXPECT_FALSE(u == Tuning{});
  }
  EXPECT_EQ(t.norm_nv, 4);
  EXPECT_EQ(t.ln2d_px, 16);
  EXPECT_EQ(t.decode(), (Tuning::SdpaDecode{32, 64}));
  // An empty variable counts as unset.
  EXPECT_EQ(with_env("DSOCR_GEMV", ""), Tuning{});
  EXPECT_TRUE(with_env("DSOCR_SDPA_TILES", "").from_environment.empty());
  // A default RuntimeOptions gives the defaults whatever the environment says.
  CleanTuningEnv clean2;
  setenv("DSOCR_POOL", "0", 1);
  RuntimeOptions o;
  o.device = std::to_string(rt().device().index);
  EXPECT_EQ(Runtime(o).tuning(), Tuning{});
}

TEST(tuning, on_off_variables) {
  struct Case {
    const char* var;
    bool Tuning::*field;
  };
  for (const Case& c : {Case{"DSOCR_GEMV", &Tuning::gemv}, Case{"DSOCR_POOL", &Tuning::pool},
                        Case{"DSOCR_GEMM_TUNING", &Tuning::gemm_tuning}}) {
    SCOPED_TRACE(c.var);
    const Tuning off = with_env(c.var, "0");
    EXPECT_FALSE(off.*c.field);
    EXPECT_EQ(off.from_environment, std::set<std::string>{c.var});
    for (const char* on : {"1", "yes", "00"}) EXPECT_TRUE(with_env(c.var, on).*c.field) << on;
  }
}

TEST(tuning, sdpa_variables) {
  Tuning t = with_env("DSOCR_SDPA_DECODE", "16,48");
  ASSERT_TRUE(t.sdpa_decode);
  EXPECT_EQ(*t.sdpa_decode, (Tuning::SdpaDecode{16, 48}));
  EXPECT_EQ(t.decode(), (Tuning::SdpaDecode{16, 48}));
  EXPECT_EQ(t.from_environment, std::set<std::string>{"DSOCR_SDPA_DECODE"});
  for (const char* bad : {"16", "12,64", "32,16", "x,y", "128,256"})
    expect_error_containing([&] { with_env("DSOCR_SDPA_DECODE", bad); },
                            fmt::format("DSOCR_SDPA_DECODE='{}': expected bk,min_keys", bad));
  t = with_env("DSOCR_SDPA_TILES", "1,2");
  ASSERT_TRUE(t.sdpa_tiles);
  EXPECT_EQ(*t.sdpa_tiles, (Tuning::SdpaTiles{1, 2}));
  EXPECT_EQ(with_env("DSOCR_SDPA_TILES", "16,16").sdpa_tiles, (Tuning::SdpaTiles{16, 16}));
  for (const char* bad : {"2", "0,2", "2,17", "a,b", "-1,4"})
    expect_error_containing([&] { with_env("DSOCR_SDPA_TILES", bad); },
                            fmt::format("DSOCR_SDPA_TILES='{}': expected rq,rk with 1 <= rq, rk <= 16", bad));
}

TEST(tuning, norm_variables_are_clamped) {
  EXPECT_EQ(with_env("DSOCR_NORM_NV", "2").norm_nv, 2);
  EXPECT_EQ(with_env("DSOCR_NORM_NV", "99").norm_nv, 8);
  EXPECT_EQ(with_env("DSOCR_NORM_NV", "0").norm_nv, 1);
  EXPECT_EQ(with_env("DSOCR_NORM_NV", "abc").norm_nv, 1);  // atoi, as before
  EXPECT_EQ(with_env("DSOCR_NORM_NV", "3").from_environment, std::set<std::string>{"DSOCR_NORM_NV"});
  EXPECT_EQ(with_env("DSOCR_LN2D_PX", "8").ln2d_px, 8);
  EXPECT_EQ(with_env("DSOCR_LN2D_PX", "1000").ln2d_px, 256);
  EXPECT_EQ(with_env("DSOCR_LN2D_PX", "-5").ln2d_px, 1);
  EXPECT_EQ(with_env("DSOCR_BATCH_GEMM", "16").batch_gemm_rows, 16);
  EXPECT_EQ(with_env("DSOCR_BATCH_GEMM", "-3").batch_gemm_rows, 0);
  EXPECT_EQ(with_env("DSOCR_BATCH_GEMM", "0").batch_gemm_for(true), 0);
  EXPECT_EQ(with_env("DSOCR_BATCH_GEMM", "4").batch_gemm_for(false), 4);
  EXPECT_EQ(with_env("DSOCR_BATCH_GEMM", "8").from_environment, std::set<std::string>{"DSOCR_BATCH_GEMM"});
}

TEST(tuning, lanes_variables) {
  for (int n : {8, 16, 32, 64, 128}) {
    const Tuning t = with_env("DSOCR_GEMV_LANES", std::to_string(n).c_str());
    EXPECT_EQ(t.gemv_lanes, n);
    EXPECT_EQ(t.gemv_lanes_for(false), n);
    EXPECT_EQ(t.gemv_lanes_for(true), n);
    EXPECT_EQ(t.moe_lanes_for(true), 64);  // its own knob
    EXPECT_EQ(t.gemv_rows_for(true), 4);   // and so are the rows
    EXPECT_EQ(t.from_environment, std::set<std::string>{"DSOCR_GEMV_LANES"});
    const Tuning m = with_env("DSOCR_MOE_LANES", std::to_string(n).c_str());
    EXPECT_EQ(m.moe_lanes_for(false), n);
    EXPECT_EQ(m.moe_lanes_for(true), n);
    EXPECT_EQ(m.gemv_lanes, std::nullopt);
  }
  EXPECT_EQ(with_env("DSOCR_GEMV_ROWS", "4").gemv_rows_for(false), 4);
  EXPECT_EQ(with_env("DSOCR_GEMV_WIDE", "0").gemv_wide, false);
  EXPECT_TRUE(with_env("DSOCR_GEMV_WIDE", "1").gemv_wide_for(true));
  EXPECT_EQ(with_env("DSOCR_GEMV_WIDE", "0").from_environment, std::set<std::string>{"DSOCR_GEMV_WIDE"});
  EXPECT_EQ(with_env("DSOCR_GEMV_ROWS", "8").gemv_rows, 8);
  for (const char* bad : {"1", "2", "16", "x"})
    expect_error_containing([&] { with_env("DSOCR_GEMV_ROWS", bad); },
                            fmt::format("DSOCR_GEMV_ROWS='{}': expected 4 or 8", bad));
  for (const char* var : {"DSOCR_GEMV_LANES", "DSOCR_MOE_LANES"})
    for (const char* bad : {"4", "48", "256", "x", "-32"})
      expect_error_containing([&] { with_env(var, bad); },
                              fmt::format("{}='{}': expected 8, 16, 32, 64 or 128", var, bad));
}

TEST(tuning, json_and_description_name_every_field) {
  CleanTuningEnv clean;
  setenv("DSOCR_SDPA_TILES", "2,1", 1);
  setenv("DSOCR_GEMV", "0", 1);
  const Tuning t = Tuning::from_env();
  const nlohmann::ordered_json j = t.to_json();
  const std::vector<std::string> fields = {"gemv",      "sdpa_decode",     "sdpa_tiles", "norm_nv",
                                           "ln2d_px",   "gemv_lanes",      "moe_lanes",  "gemv_rows",
                                           "gemv_wide", "batch_gemm_rows", "pool",       "gemm_tuning"};
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  std::vector<std::string> want = fields;
  want.push_back("from_environment");
  EXPECT_EQ(keys, want);
  EXPECT_EQ(j["gemv"], false);
  EXPECT_EQ(j["sdpa_decode"], "auto");
  EXPECT_EQ(j["sdpa_tiles"], (nlohmann::ordered_json{{"rq", 2}, {"rk", 1}}));
  EXPECT_EQ(j["norm_nv"], 4);
  EXPECT_EQ(j["ln2d_px"], 16);
  EXPECT_EQ(j["gemv_lanes"], "auto");
  EXPECT_EQ(j["moe_lanes"], "auto");
  EXPECT_EQ(j["gemv_rows"], "auto");
  EXPECT_EQ(j["gemv_wide"], "auto");
  EXPECT_EQ(j["batch_gemm_rows"], "auto");
  EXPECT_EQ(j["pool"], true);
  EXPECT_EQ(j["gemm_tuning"], true);
  EXPECT_EQ(j["from_environment"], (nlohmann::ordered_json{"DSOCR_GEMV", "DSOCR_SDPA_TILES"}));
  const std::string d = t.describe();
  for (const std::string& f : fields) EXPECT_NE(d.find(f), std::string::npos) << f << " missing from\n" << d;
  EXPECT_NE(d.find("2,1"), std::string::npos) << d;
  EXPECT_NE(d.find("DSOCR_SDPA_TILES"), std::string::npos) << d;
  EXPECT_NE(d.find("default"), std::string::npos) << d;
}

TEST(tuning, runtime_refuses_bad_values_by_field) {
  Tuning t;
  t.sdpa_decode = Tuning::SdpaDecode{12, 64};
  expect_error_containing([&] { runtime_with(t); }, "sdpa_decode 12,64");
  t = Tuning{};
  t.sdpa_tiles = Tuning::SdpaTiles{0, 4};
  expect_error_containing([&] { runtime_with(t); }, "sdpa_tiles 0,4");
  t = Tuning{};
  t.norm_nv = 9;
  expect_error_containing([&] { runtime_with(t); }, "norm_nv 9");
  t = Tuning{};
  t.ln2d_px = 0;
  expect_error_containing([&] { runtime_with(t); }, "ln2d_px 0");
  t = Tuning{};
  t.gemv_lanes = 48;
  expect_error_containing([&] { runtime_with(t); }, "gemv_lanes 48");
  t = Tuning{};
  t.batch_gemm_rows = -1;
  expect_error_containing([&] { runtime_with(t); }, "batch_gemm_rows -1");
  t = Tuning{};
  t.moe_lanes = 3;
  expect_error_containing([&] { runtime_with(t); }, "moe_lanes 3");
  t = Tuning{};
  t.gemv_rows = 2;
  expect_error_containing([&] { runtime_with(t); }, "gemv_rows 2");
}

// linear() of 2 rows: the gemv kernel by default, CLBlast with gemv off; both match the host.
TEST(tuning, gemv_off_goes_through_clblast) {
  const int rows = 2, in = 96, out = 37;
  auto x = random_floats(rows * in, 5), w = random_floats(out * in, 6);
  std::vector<double> ref(rows * out);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) ref[r * out + o] += double(x[r * in + i]) * w[o * in + i];
  for (bool gemv : {true, false}) {
    SCOPED_TRACE(gemv ? "gemv on" : "gemv off");
    Tuning t;
    t.gemv = gemv;
    auto r = runtime_with(t, true);
    Tensor tx = r->upload(x, {rows, in}), tw = r->upload(w, {out, in}), ty = r->empty({rows, out});
    linear(*r, tx, tw, nullptr, ty);
    EXPECT_TRUE(all_close(r->read_f32(ty), ref, {rows, out}, 1e-5, 1e-4));
    bool used_gemv = false;
    for (auto& l : r->take_timings()) used_gemv |= l.name == "gemv_f32";
    EXPECT_EQ(used_gemv, gemv);
  }
}

// The pool off: every allocation is a fresh buffer.
TEST(tuning, pool_off_reuses_nothing) {
  for (bool pool : {true, false}) {
    Tuning t;
    t.pool = pool;
    auto r = runtime_with(t);
    for (int i = 0; i < 3; ++i) r->empty({1024}, DType::f32, "pool probe");
    EXPECT_EQ(r->memory().reused > 0, pool);
  }
}

// The Runtime applies no stored CLBlast tuning itself (the command that creates it does).
TEST(tuning, runtime_leaves_the_stored_clblast_tuning_alone) {
  CacheDir cache;
  GemmTuning g;
  g.kernels["Xgemm"] = current("Xgemm");
  save_gemm_tuning(rt().device(), g);
  auto r = runtime_with(Tuning{});
  EXPECT_EQ(r->gemm_tuning(), "");
  r->set_gemm_tuning(apply_gemm_tuning(*r));  // what apps/runtime_setup.cpp does when gemm_tuning is on
  EXPECT_NE(r->gemm_tuning().find("applied"), std::string::npos) << r->gemm_tuning();
}

// Every lane count (both knobs), 4 or 8 rows per chunk, and wide or element loads build the kernels
// with them (LANES=n, ROWS=r, NO_WIDE in the build options; ROWS=1 for one row) and give the same math: linear() of 5
// rows of bf16 weights (K = 1280, the matrix-vector kernel) close to double, each row bit for bit its one-row result;
// ops::moe_decode (f32, shared experts) close to its result with the default lanes.
TEST(tuning, gemv_lanes_are_followed) {
  const int rows = 5, in = 1280, out = 70;
  auto x = random_floats(rows * in, 81, -2.f, 2.f), w = random_floats(out * in, 82);
  std::vector<uint16_t> wb(w.size());
  std::vector<double> ref(rows * out);
  for (size_t i = 0; i < w.size(); ++i) wb[i] = float_to_bf16(w[i]);
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) ref[r * out + o] += double(x[r * in + i]) * bf16_to_float(wb[o * in + i]);
  const int64_t T = 2, H = 64, E = 6, I = 24, Is = 16;
  auto xm = random_floats(T * H, 83), router = random_floats(E * H, 84),
       gu = random_floats(E * 2 * I * H, 85, -.3f, .3f), dn = random_floats(E * H * I, 86, -.3f, .3f),
       sgu = random_floats(2 * Is * H, 87, -.3f, .3f), sd = random_floats(H * Is, 88, -.3f, .3f);
  std::vector<float> moe_default;
  for (int lanes : {0, 8, 16, 64, 128}) {  // 0: the default for this device
    SCOPED_TRACE(fmt::format("lanes {}", lanes));
    Tuning t;
    if (lanes) t.gemv_lanes = t.moe_lanes = lanes;
    if (lanes) t.gemv_rows = lanes % 16 == 0 ? 4 : 8;  // 16, 64, 128: chunks of 4 rows (5 rows: 4 + 1)
    if (lanes) t.gemv_wide = lanes < 64;               // 64, 128: element loads
    auto r = runtime_with(t);
    std::vector<std::string> built;
    r->programs().set_build_observer([&](const BuildEvent& e) {
      if (!e.done) built.push_back(e.file + " " + e.options);
    });
    Tensor tx = r->upload(x, {rows, in}), tw = r->upload(wb.data(), {out, in}, DType::bf16), ty = r->empty({rows, out});
    linear(*r, tx, tw, nullptr, ty, LinearPath::gemv);
    auto all = r->read_f32(ty);
    EXPECT_TRUE(all_close(all, ref, {rows, out}, 1e-5, 1e-4));
    for (int row = 0; row < rows; ++row) {
      Tensor x1 = r->upload(x.data() + row * in, {1, in}, DType::f32), y1 = r->empty({1, out});
      linear(*r, x1, tw, nullptr, y1);
      auto one = r->read_f32(y1);
      EXPECT_EQ(0, std::memcmp(one.data(), all.data() + row * out, out * sizeof(float))) << "row " << row;
    }
    ops::MoeExperts ex{r->upload(gu, {E, 2 * I, H}), r->upload(dn, {E, H, I}), E, I, H};
    ops::MoeShared sh{r->upload(sgu, {2 * Is, H}), r->upload(sd, {H, Is})};
    Tensor xt = r->upload(xm, {T, H}), ym = r->empty({T, H});
    ops::moe_decode(*r, xt, r->upload(router, {E, H}), ex, &sh, ops::MoeRouting{3, true, 1.0f}, ym);
    auto moe = r->read_f32(ym);
    if (lanes == 0)
      moe_default = moe;
    else
      EXPECT_TRUE(all_close(moe, to_double(moe_default), {T, H}, 1e-6, 1e-5));
    const bool gpu = r->device().is_gpu;
    const std::string want = fmt::format("LANES={}", t.gemv_lanes_for(gpu)),
                      want_moe = fmt::format("LANES={}", t.moe_lanes_for(gpu));
    int gemv8 = 0, gemv1 = 0, moe_progs = 0;
    for (const std::string& b : built) {
      if (b.rfind("linear.cl", 0) == 0 && b.find("LANES") != std::string::npos) {
        EXPECT_NE(b.find(want), std::string::npos) << b;
        const bool one = b.find("ROWS=1") != std::string::npos;
        ++(one ? gemv1 : gemv8);
        if (!one) EXPECT_NE(b.find(fmt::format("ROWS={}", t.gemv_rows_for(gpu))), std::string::npos) << b;
        EXPECT_EQ(b.find("NO_WIDE") != std::string::npos, !t.gemv_wide_for(gpu)) << b;
      }
      if (b.rfind("moe_decode.cl", 0) == 0) {
        EXPECT_NE(b.find(want_moe), std::string::npos) << b;
        ++moe_progs;
      }
    }
    EXPECT_EQ(gemv8, 1);
    EXPECT_EQ(gemv1, 1);
    EXPECT_GE(moe_progs, 1);
  }
}

// Runtime::peak_during: the most bytes live while a stage runs (from what was live before it),
// without forgetting the peak before it.
TEST(runtime, peak_during_measures_a_stage_and_keeps_the_peak) {
  auto r = runtime_with(Tuning{});
  { Tensor big = r->empty({1 << 20}, DType::f32, "earlier peak"); }  // 4 MiB, freed
  const uint64_t before = r->memory().peak, live = r->memory().current;
  ASSERT_GE(before, live + (4u << 20));
  const uint64_t during = r->peak_during([&] {
    Tensor a = r->empty({1 << 16}, DType::f32, "stage a");  // 256 KiB
    Tensor b = r->empty({1 << 16}, DType::f32, "stage b");
  });
  EXPECT_GE(during, live + (512u << 10));
  EXPECT_LT(during, live + (4u << 20));  // not the earlier, larger peak
  EXPECT_EQ(r->memory().peak, before);   // the most ever, still
  EXPECT_THROW(r->peak_during([&] { throw Error("stage failed"); }), Error);
  EXPECT_EQ(r->memory().peak, before);
}

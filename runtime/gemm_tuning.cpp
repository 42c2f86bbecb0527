#include "runtime/gemm_tuning.h"

#include <clblast.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "runtime/gemm.h"
#include "runtime/program_cache.h"
#include "runtime/runtime.h"

namespace dsocr {
namespace {

constexpr const char* kFormat = "dsocr-clblast-tuning-1";
using ClMap = std::unordered_map<std::string, size_t>;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// One n x n x n SGEMM (odd values) checked on a sample of entries against the host.
bool gemm_ok_at(Runtime& rt, size_t n) {
  std::vector<float> a(n * n), b(n * n);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 7919 % 17)) / 8.f - 1.f;
    b[i] = static_cast<float>((i * 104729 % 13)) / 6.f - 1.f;
  }
  const int64_t N = static_cast<int64_t>(n);
  Tensor ta = rt.upload(a.data(), {N, N}, DType::f32, "tuning check a"),
         tb = rt.upload(b.data(), {N, N}, DType::f32, "tuning check b"),
         tc = rt.empty({N, N}, DType::f32, "tuning check c");
  GemmArgs g;
  g.m = g.n = g.k = N;
  g.lda = g.ldb = g.ldc = N;
  gemm(rt, g, ta, tb, tc);
  std::vector<float> c = rt.read_f32(tc);
  for (size_t i = 0; i < n; i += 13)
    for (size_t j = 0; j < n; j += 7) {
      double ref = 0;
      for (size_t l = 0; l < n; ++l) ref += double(a[i * n + l]) * b[l * n + j];
      if (!(std::fabs(c[i * n + j] - ref) <= 1e-3 * (1 + std::fabs(ref)))) return false;
    }
  return true;
}

// Checks both of CLBlast's SGEMM paths: the direct kernel (a small product) and the indirect
// Xgemm, forced for a mid-sized product by lowering the routine's size threshold for the check.
bool gemm_ok(Runtime& rt) {
  const cl_device_id d = rt.device().device;
  ClMap routine;
  const bool have = clblast::RetrieveParameters(d, "GemmRoutine", clblast::Precision::kSingle, routine) ==
                        clblast::StatusCode::kSuccess &&
                    routine.count("XGEMM_MIN_INDIRECT_SIZE");
  bool ok = gemm_ok_at(rt, 67);
  if (ok && have) {
    ClMap low = routine;
    low["XGEMM_MIN_INDIRECT_SIZE"] = 1;
    clblast::OverrideParameters(d, "GemmRoutine", clblast::Precision::kSingle, low);
    try {
      ok = gemm_ok_at(rt, 131);
    } catch (...) {
      clblast::OverrideParameters(d, "GemmRoutine", clblast::Precision::kSingle, routine);
      throw;
    }
    clblast::OverrideParameters(d, "GemmRoutine", clblast::Precision::kSingle, routine);
  } else if (ok) {
    ok = gemm_ok_at(rt, 1300);  // above any database's threshold
  }
  return ok;
}

// Why parameters p of CLBlast kernel `name` cannot build on dev ("" when they can): CLBlast's own
// divisibility rules for its register and local tiles (a violation means a zero-sized array or a
// partial tile, which some compilers abort on), work-group and local-memory limits.
std::string invalid_reason(const std::string& name, const ClMap& p, const DeviceInfo& dev) {
  auto v = [&](const char* k) { return p.count(k) ? p.at(k) : size_t(1); };
  for (auto& [k, x] : p) {
    const bool flag = k == "GEMMK" || k == "SA" || k == "SB" || k == "STRM" || k == "STRN" || k == "TRA_PAD" ||
                      k == "TRA_SHUFFLE" || k == "PADTRA_PAD" || k == "XGEMM_MIN_INDIRECT_SIZE";
    if (flag ? x > 4096 : (x < 1 || x > 4096)) return fmt::format("{} = {} is out of range", k, x);
  }
  auto multiple = [&](const char* a, size_t b, const std::string& what) -> std::string {
    if (b == 0 || v(a) % b != 0) return fmt::format("{} = {} is not a multiple of {} = {}", a, v(a), what, b);
    return {};
  };
  std::string r;
  size_t wg = 1, local_floats = 0;
  if (name == "Xgemm" || name == "XgemmDirect") {
    const std::string d = name == "Xgemm" ? "" : "D";
    auto k = [&](const char* base) { return std::string(base) + d; };
    const size_t mdimc = v(k("MDIMC").c_str()), ndimc = v(k("NDIMC").c_str()), mdima = v(k("MDIMA").c_str()),
                 ndimb = v(k("NDIMB").c_str()), vwm = v(k("VWM").c_str()), vwn = v(k("VWN").c_str());
    const size_t kwg = v(k("KWG").c_str()), mwg = v(k("MWG").c_str()), nwg = v(k("NWG").c_str());
    const std::pair<std::string, std::pair<size_t, std::string>> rules[] = {
        {k("MWG"), {mdimc * vwm, k("MDIMC") + "*" + k("VWM")}},
        {k("NWG"), {ndimc * vwn, k("NDIMC") + "*" + k("VWN")}},
        {k("MWG"), {mdima * vwm, k("MDIMA") + "*" + k("VWM")}},
        {k("NWG"), {ndimb * vwn, k("NDIMB") + "*" + k("VWN")}},
        {k("KWG"), {v(k("KWI").c_str()), k("KWI")}},
        {k("KWG"),
         {(mdimc * ndimc) % mdima ? 0 : mdimc * ndimc / mdima, k("MDIMC") + "*" + k("NDIMC") + "/" + k("MDIMA")}},
        {k("KWG"),
         {(mdimc * ndimc) % ndimb ? 0 : mdimc * ndimc / ndimb, k("MDIMC") + "*" + k("NDIMC") + "/" + k("NDIMB")}},
    };
    // The last three rules hold for the 1-D register kernel (GEMMK = 0) only: the 2-D one (GEMMK =
    // 1) walks K by KREG, not through local tiles of KWG.
    const size_t nrules = name == "Xgemm" && v("GEMMK") == 1 ? 4 : std::size(rules);
    for (size_t i = 0; i < nrules; ++i)
      if (r = multiple(rules[i].first.c_str(), rules[i].second.first, rules[i].second.second); !r.empty()) return r;
    wg = mdimc * ndimc;
    local_floats =
        (name == "XgemmDirect" || v("SA") ? kwg * mwg : 0) + (name == "XgemmDirect" || v("SB") ? kwg * nwg : 0);
  } else if (name == "Copy") {
    wg = v("COPY_DIMX") * v("COPY_DIMY");
  } else if (name == "Pad") {
    wg = v("PAD_DIMX") * v("PAD_DIMY");
  } else if (name == "Transpose") {
    wg = v("TRA_DIM") * v("TRA_DIM");
    local_floats = v("TRA_DIM") * v("TRA_WPT") * (v("TRA_DIM") * v("TRA_WPT") + v("TRA_PAD"));
  } else if (name == "Padtranspose") {
    wg = v("PADTRA_TILE") * v("PADTRA_TILE");
    local_floats = v("PADTRA_TILE") * v("PADTRA_WPT") * (v("PADTRA_TILE") * v("PADTRA_WPT") + v("PADTRA_PAD"));
  }
  if (wg > dev.max_work_group) return fmt::format("a work-group of {} exceeds the device's {}", wg, dev.max_work_group);
  if (local_floats * 4 > dev.local_mem)
    return fmt::format("{} bytes of local memory exceed the device's {}", local_floats * 4, dev.local_mem);
  return {};
}

}  // namespace

std::string gemm_tuning_path(const DeviceInfo& dev) {
  const std::string dir = default_cache_dir();
  if (dir.empty()) return {};
  return fmt::format(
      "{}/clblast-tuning-{:016x}.json", dir,
      fnv1a(dev.name + "\n" + dev.driver_version + "\n" + dev.platform_name + "\n" + dev.platform_version));
}

std::string apply_gemm_tuning(Runtime& rt) {
  const DeviceInfo& dev = rt.device();
  const std::string path = gemm_tuning_path(dev);
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) return {};
  nlohmann::json j;
  try {
    std::ifstream f(path);
    j = nlohmann::json::parse(f);
    if (j.value("format", "") != kFormat) return fmt::format("GEMM tuning {} ignored: not a {} file", path, kFormat);
    if (j.value("device", "") != dev.name || j.value("driver", "") != dev.driver_version ||
        j.value("platform", "") != dev.platform_name)
      return fmt::format("GEMM tuning {} ignored: made for {} (driver {}), not this device", path,
                         j.value("device", "?"), j.value("driver", "?"));
    if (!j.contains("kernels") || !j["kernels"].is_object())
      return fmt::format("GEMM tuning {} ignored: no kernels", path);
  } catch (const std::exception& e) {
    return fmt::format("GEMM tuning {} ignored: {}", path, e.what());
  }
  // Applies kernel by kernel, keeping CLBlast's own parameters to restore on any failure.
  std::map<std::string, ClMap> before;
  auto restore = [&] {
    for (auto& [name, p] : before) clblast::OverrideParameters(dev.device, name, clblast::Precision::kSingle, p);
  };
  std::vector<std::string> applied;
  for (auto& [name, params] : j["kernels"].items()) {
    ClMap current;
    if (clblast::RetrieveParameters(dev.device, name, clblast::Precision::kSingle, current) !=
        clblast::StatusCode::kSuccess) {
      restore();
      return fmt::format("GEMM tuning {} ignored: CLBlast has no kernel '{}'", path, name);
    }
    ClMap next = current;
    for (auto& [key, value] : params.items()) {
      if (!current.count(key) || !value.is_number_unsigned()) {
        restore();
        return fmt::format("GEMM tuning {} ignored: '{}' is not an unsigned parameter of CLBlast's {}", path, key,
                           name);
      }
      next[key] = value.get<size_t>();
    }
    if (std::string why = invalid_reason(name, next, dev); !why.empty()) {
      restore();
      return fmt::format("GEMM tuning {} ignored: {} parameters cannot build: {}", path, name, why);
    }
    before[name] = current;
    if (clblast::OverrideParameters(dev.device, name, clblast::Precision::kSingle, next) !=
        clblast::StatusCode::kSuccess) {
      restore();
      return fmt::format("GEMM tuning {} ignored: CLBlast refused the parameters of {}", path, name);
    }
    applied.push_back(name);
  }
  bool ok = false;
  try {
    ok = gemm_ok(rt);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok) {
    restore();
    return fmt::format("GEMM tuning {} ignored: its parameters gave a wrong or failing SGEMM", path);
  }
  return fmt::format("GEMM tuning applied from {} ({})", path, fmt::join(applied, ", "));
}

GemmTuning tune_gemm(Runtime& rt, size_t m, size_t n, size_t k, double fraction, bool helpers) {
  GemmTuning t;
  t.m = m;
  t.n = n;
  t.k = k;
  t.fraction = fraction;
  cl_command_queue q = rt.queue()();
  auto t0 = std::chrono::steady_clock::now();
  auto run = [&](const std::string& name, const std::function<clblast::StatusCode(ClMap&)>& tune) {
    ClMap p;
    clblast::StatusCode s = tune(p);
    if (s != clblast::StatusCode::kSuccess)
      throw Error(fmt::format("CLBlast's tuner for {} failed with status {} on {}", name, static_cast<int>(s),
                              rt.device().label()));
    ClMap known;  // keep only the kernel's parameters (the tuner may add others, e.g. PRECISION)
    clblast::RetrieveParameters(rt.device().device, name, clblast::Precision::kSingle, known);
    for (auto& [key, v] : p)
      if (known.count(key)) t.kernels[name][key] = v;
  };
  run("Xgemm", [&](ClMap& p) { return clblast::TuneXgemm<float>(&q, m, n, k, fraction, p); });
  if (helpers) {
    run("XgemmDirect", [&](ClMap& p) { return clblast::TuneXgemmDirect<float>(&q, 256, 256, 256, fraction, p); });
    run("Copy", [&](ClMap& p) { return clblast::TuneCopy<float>(&q, m, n, 1.0, p); });
    run("Pad", [&](ClMap& p) { return clblast::TunePad<float>(&q, m, n, 1.0, p); });
    run("Transpose", [&](ClMap& p) { return clblast::TuneTranspose<float>(&q, m, n, 1.0, p); });
    run("Padtranspose", [&](ClMap& p) { return clblast::TunePadtranspose<float>(&q, m, n, 1.0, p); });
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return t;
}

std::string save_gemm_tuning(const DeviceInfo& dev, const GemmTuning& t) {
  const std::string path = gemm_tuning_path(dev);
  if (path.empty()) throw Error("no cache folder for the GEMM tuning (set DSOCR_CACHE_DIR or HOME)");
  nlohmann::json j = {
      {"format", kFormat},
      {"device", dev.name},
      {"driver", dev.driver_version},
      {"platform", dev.platform_name},
      {"tuned", {{"m", t.m}, {"n", t.n}, {"k", t.k}, {"fraction", t.fraction}, {"seconds", t.seconds}}}};
  j["kernels"] = nlohmann::json::object();
  for (auto& [name, p] : t.kernels) j["kernels"][name] = p;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp =
      path + fmt::format(".tmp{}", static_cast<long>(std::chrono::steady_clock::now().time_since_epoch().count()));
  {
    std::ofstream f(tmp);
    if (!(f << j.dump(2) << "\n")) throw Error("cannot write the GEMM tuning to " + tmp);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(fmt::format("cannot move the GEMM tuning into {}: {}", path, ec.message()));
  return path;
}

}  // namespace dsocr

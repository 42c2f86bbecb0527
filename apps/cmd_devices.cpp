// dsocr devices, dsocr warmup and dsocr --version.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "apps/runtime_setup.h"
#include "runtime/device.h"
#include "runtime/gemm_tuning.h"
#include "runtime/kernel_source.h"
#include "runtime/runtime.h"

namespace dsocr {

static std::string mib(uint64_t b) { return fmt::format("{:.0f} MiB", b / 1048576.0); }

namespace {

const char* kDevicesUsage =
    R"(usage: dsocr devices [--tags] [--verbose]

Lists every OpenCL device of every platform: vendor, driver, OpenCL C version, compute units,
global and local memory, maximum work-group size, cl_khr_fp16, subgroups and images. rusticl
lists devices only when RUSTICL_ENABLE names a driver (llvmpipe for the CPU, asahi on Apple
silicon). The [N] before each device is its index for --device N.
  --tags      one platform tag per line (":INDEX" added where a platform has several devices)
  --verbose   also the tuning knobs a run would use on each device (defaults, or DSOCR_GEMV,
              DSOCR_SDPA_TILES, ... from the environment) and its stored CLBlast tuning file
Exit status: 0, 1 when no device is found (or a tuning variable has a refused value).
)";

const char* kWarmupUsage =
    R"(usage: dsocr warmup [--device SPEC]

Compiles every kernel file (with its default #defines) for the device into the program cache and
prints the cache's hits and misses. dsocr ocr compiles the specialised programs a run needs on
first use and caches them too ($DSOCR_CACHE_DIR, default ~/.cache/dsocr; DSOCR_CACHE=0: off).
  --device SPEC   OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
Exit status: 0, 1 a kernel does not build (the build log is printed), 2 usage.
)";

const char* kVersionUsage =
    R"(usage: dsocr --version

Prints the version, the git commit it was built from, and every OpenCL platform found with its
version and number of devices.
)";

std::string platform_info(cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  if (clGetPlatformInfo(p, what, 0, nullptr, &n) != CL_SUCCESS || n == 0) return "?";
  std::string s(n, '\0');
  clGetPlatformInfo(p, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

// The knobs a run on d would use (the same for every device today: the environment's), and the
// device's stored CLBlast tuning file, if any (checked only when a run applies it).
void print_tuning(const DeviceInfo& d, const Tuning& tuning) {
  fmt::print("    tuning\n{}", tuning.describe("      "));
  const std::string path = gemm_tuning_path(d);
  std::error_code ec;
  const bool stored = !path.empty() && std::filesystem::is_regular_file(path, ec);
  std::string what = stored ? path : "none stored (dsocr tune)";
  if (stored && !tuning.gemm_tuning) what += " (not applied: DSOCR_GEMM_TUNING=0)";
  fmt::print("    CLBlast tuning  {}\n", what);
}

}  // namespace

int cmd_version(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kVersionUsage, stdout);
    return 0;
  }
  if (!a.positional().empty()) throw UsageError("dsocr --version takes no arguments");
  fmt::print("{}\n", version_line());
  cl_uint n = 0;
  std::vector<cl_platform_id> ids;
  if (clGetPlatformIDs(0, nullptr, &n) == CL_SUCCESS && n > 0) {
    ids.resize(n);
    if (clGetPlatformIDs(n, ids.data(), nullptr) != CL_SUCCESS) ids.clear();
  }
  if (ids.empty()) fmt::print("OpenCL platforms: none found (is an ICD installed? see /etc/OpenCL/vendors)\n");
  if (!ids.empty()) fmt::print("OpenCL platforms:\n");
  for (cl_platform_id p : ids) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS) nd = 0;
    fmt::print("  {} ({}), {} device{}\n", platform_info(p, CL_PLATFORM_NAME), platform_info(p, CL_PLATFORM_VERSION),
               nd, nd == 1 ? "" : "s");
  }
  return 0;
}

int cmd_devices(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kDevicesUsage, stdout);
    return 0;
  }
  bool tags = a.flag("--tags");
  const bool verbose = a.flag("--verbose");
  if (!a.positional().empty()) throw UsageError("dsocr devices takes no arguments (see dsocr devices --help)");
  auto devices = list_devices();
  if (tags) {
    // One tag per line, ":INDEX" added where a platform has several devices.
    for (auto& d : devices) {
      int same = 0, before = 0;
      for (auto& e : devices)
        if (e.tag == d.tag) {
          ++same;
          if (e.index < d.index) ++before;
        }
      fmt::print("{}\n", same > 1 ? fmt::format("{}:{}", d.tag, before) : d.tag);
    }
    return 0;
  }
  if (devices.empty()) {
    fmt::print("no OpenCL devices found (for rusticl set RUSTICL_ENABLE, e.g. RUSTICL_ENABLE=llvmpipe)\n");
    return 1;
  }
  const Tuning tuning = verbose ? Tuning::from_env() : Tuning{};
  for (auto& d : devices) {
    fmt::print("[{}] {}  ({})\n", d.index, d.label(), d.is_gpu ? "GPU" : "not a GPU");
    fmt::print("    platform        {} ({})\n", d.platform_name, d.platform_version);
    fmt::print("    vendor          {}\n", d.vendor);
    fmt::print("    driver          {}\n", d.driver_version);
    fmt::print("    device version  {}\n", d.device_version);
    fmt::print("    OpenCL C        {}\n", d.opencl_c_version);
    fmt::print("    compute units   {}\n", d.compute_units);
    fmt::print("    global memory   {} (max allocation {})\n", mib(d.global_mem), mib(d.max_alloc));
    fmt::print("    local memory    {} KiB\n", d.local_mem / 1024);
    fmt::print("    max work-group  {}\n", d.max_work_group);
    fmt::print("    cl_khr_fp16     {}\n", d.fp16 ? "yes" : "no");
    fmt::print("    subgroups       {}\n", d.subgroups ? "yes" : "no");
    fmt::print("    images          {}\n", d.images ? "yes" : "no");
    if (verbose) print_tuning(d, tuning);
  }
  return 0;
}

int cmd_warmup(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kWarmupUsage, stdout);
    return 0;
  }
  RuntimeOptions o;
  o.device = a.value("--device");
  if (!a.positional().empty()) throw UsageError("dsocr warmup takes no arguments (see dsocr warmup --help)");
  std::unique_ptr<Runtime> rt = open_runtime(o);
  fmt::print("device: {}\nkernels: {}\n", rt->device().label(), kernel_source_origin());
  for (auto& f : kernel_files()) rt->programs().get(f, {});
  fmt::print("{}\n", rt->programs().summary());
  return 0;
}

}  // namespace dsocr

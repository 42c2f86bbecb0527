#include <fmt/format.h>

#include "apps/commands.h"
#include "runtime/device.h"
#include "runtime/kernel_source.h"
#include "runtime/runtime.h"

namespace dsocr {

bool Args::flag(const std::string& name) {
  for (auto it = args_.begin(); it != args_.end(); ++it)
    if (*it == name) {
      args_.erase(it);
      return true;
    }
  return false;
}

std::string Args::value(const std::string& name, const std::string& fallback) {
  for (auto it = args_.begin(); it != args_.end(); ++it) {
    if (*it == name) {
      if (it + 1 == args_.end()) throw UsageError(name + " needs a value");
      std::string v = *(it + 1);
      args_.erase(it, it + 2);
      return v;
    }
    if (it->rfind(name + "=", 0) == 0) {
      std::string v = it->substr(name.size() + 1);
      args_.erase(it);
      return v;
    }
  }
  return fallback;
}

std::vector<std::string> Args::positional() {
  for (auto& a : args_)
    if (a.size() > 1 && a[0] == '-' && a != "-") throw UsageError("unknown option " + a);
  return args_;
}

static std::string mib(uint64_t b) { return fmt::format("{:.0f} MiB", b / 1048576.0); }

int cmd_devices(const std::vector<std::string>& argv) {
  Args a(argv);
  bool tags = a.flag("--tags");
  a.positional();
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
  }
  return 0;
}

int cmd_warmup(const std::vector<std::string>& argv) {
  Args a(argv);
  RuntimeOptions o;
  o.device = a.value("--device");
  a.positional();
  Runtime rt(o);
  fmt::print("device: {}\nkernels: {}\n", rt.device().label(), kernel_source_origin());
  for (auto& f : kernel_files()) rt.programs().get(f, {});
  fmt::print("{}\n", rt.programs().summary());
  return 0;
}

}  // namespace dsocr

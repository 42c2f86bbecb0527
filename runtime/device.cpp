#include "runtime/device.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "runtime/error.h"

namespace dsocr {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string platform_string(cl_platform_id p, cl_platform_info what) {
  size_t n = 0;
  check_cl(clGetPlatformInfo(p, what, 0, nullptr, &n), "clGetPlatformInfo");
  std::string s(n, '\0');
  check_cl(clGetPlatformInfo(p, what, n, s.data(), nullptr), "clGetPlatformInfo");
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string device_string(cl_device_id d, cl_device_info what) {
  size_t n = 0;
  if (clGetDeviceInfo(d, what, 0, nullptr, &n) != CL_SUCCESS) return {};
  std::string s(n, '\0');
  check_cl(clGetDeviceInfo(d, what, n, s.data(), nullptr), "clGetDeviceInfo");
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

template <typename T>
T device_value(cl_device_id d, cl_device_info what) {
  T v{};
  check_cl(clGetDeviceInfo(d, what, sizeof(T), &v, nullptr), "clGetDeviceInfo");
  return v;
}

std::string platform_tag(const std::string& name) {
  std::string l = lower(name);
  if (l.find("portable computing language") != std::string::npos || l.find("pocl") != std::string::npos)
    return "pocl";
  std::string tag;
  for (char c : l) {
    if (std::isalnum(static_cast<unsigned char>(c))) tag += c;
    else if (!tag.empty()) break;
  }
  return tag.empty() ? "opencl" : tag;
}

}  // namespace

bool DeviceInfo::has_extension(const std::string& ext) const {
  size_t pos = 0;
  while ((pos = extensions.find(ext, pos)) != std::string::npos) {
    size_t end = pos + ext.size();
    bool left = pos == 0 || extensions[pos - 1] == ' ';
    bool right = end == extensions.size() || extensions[end] == ' ';
    if (left && right) return true;
    pos = end;
  }
  return false;
}

std::string DeviceInfo::label() const { return tag + ":" + name; }

std::vector<DeviceInfo> list_devices() {
  cl_uint np = 0;
  cl_int st = clGetPlatformIDs(0, nullptr, &np);
  if (st == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || np == 0) return {};
  check_cl(st, "clGetPlatformIDs");
  std::vector<cl_platform_id> platforms(np);
  check_cl(clGetPlatformIDs(np, platforms.data(), nullptr), "clGetPlatformIDs");
  std::vector<DeviceInfo> out;
  for (cl_platform_id p : platforms) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
    std::vector<cl_device_id> devs(nd);
    check_cl(clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd, devs.data(), nullptr), "clGetDeviceIDs");
    for (cl_device_id d : devs) {
      DeviceInfo i;
      i.platform = p;
      i.device = d;
      i.index = static_cast<int>(out.size());
      i.platform_name = platform_string(p, CL_PLATFORM_NAME);
      i.platform_version = platform_string(p, CL_PLATFORM_VERSION);
      i.tag = platform_tag(i.platform_name);
      i.name = device_string(d, CL_DEVICE_NAME);
      i.vendor = device_string(d, CL_DEVICE_VENDOR);
      i.driver_version = device_string(d, CL_DRIVER_VERSION);
      i.device_version = device_string(d, CL_DEVICE_VERSION);
      i.opencl_c_version = device_string(d, CL_DEVICE_OPENCL_C_VERSION);
      i.extensions = device_string(d, CL_DEVICE_EXTENSIONS);
      i.is_gpu = (device_value<cl_device_type>(d, CL_DEVICE_TYPE) & CL_DEVICE_TYPE_GPU) != 0;
      i.compute_units = device_value<cl_uint>(d, CL_DEVICE_MAX_COMPUTE_UNITS);
      i.global_mem = device_value<cl_ulong>(d, CL_DEVICE_GLOBAL_MEM_SIZE);
      i.max_alloc = device_value<cl_ulong>(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
      i.local_mem = device_value<cl_ulong>(d, CL_DEVICE_LOCAL_MEM_SIZE);
      i.max_work_group = device_value<size_t>(d, CL_DEVICE_MAX_WORK_GROUP_SIZE);
      i.fp16 = i.has_extension("cl_khr_fp16");
      i.fp64 = i.has_extension("cl_khr_fp64");
      i.subgroups = i.has_extension("cl_khr_subgroups") || i.has_extension("cl_intel_subgroups");
      i.images = device_value<cl_bool>(d, CL_DEVICE_IMAGE_SUPPORT) != 0;
      out.push_back(std::move(i));
    }
  }
  return out;
}

DeviceInfo select_device(const std::string& spec_in) {
  std::string spec = spec_in;
  if (spec.empty()) {
    if (const char* env = std::getenv("DSOCR_DEVICE")) spec = env;
  }
  auto devices = list_devices();
  if (devices.empty())
    throw Error(
        "no OpenCL device found: install an OpenCL driver (e.g. pocl-opencl-icd, or mesa-opencl-icd "
        "with RUSTICL_ENABLE=<driver>) and check `dsocr devices`");
  auto listing = [&] {
    std::string s;
    for (auto& d : devices) s += fmt::format("\n  [{}] {} ({})", d.index, d.label(), d.platform_name);
    return s;
  };
  if (spec.empty()) {
    for (auto& d : devices)
      if (d.is_gpu) return d;
    return devices.front();
  }
  bool numeric = std::all_of(spec.begin(), spec.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (numeric) {
    size_t k = std::stoul(spec);
    if (k < devices.size()) return devices[k];
    throw Error(fmt::format("device index {} out of range; devices:{}", spec, listing()));
  }
  std::string name = spec;
  size_t which = 0;
  if (auto colon = spec.rfind(':'); colon != std::string::npos) {
    std::string idx = spec.substr(colon + 1);
    if (!idx.empty() && std::all_of(idx.begin(), idx.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      name = spec.substr(0, colon);
      which = std::stoul(idx);
    }
  }
  std::string key = lower(name);
  std::vector<const DeviceInfo*> matches;
  for (auto& d : devices) {
    if (d.tag == key || lower(d.platform_name).find(key) != std::string::npos ||
        lower(d.name).find(key) != std::string::npos)
      matches.push_back(&d);
  }
  if (which < matches.size()) return *matches[which];
  throw Error(fmt::format("no OpenCL device matches '{}' ({} match{}); devices:{}{}", spec, matches.size(),
                          matches.size() == 1 ? "" : "es", listing(),
                          key == "rusticl" ? "\n(rusticl lists devices only with RUSTICL_ENABLE set, e.g. RUSTICL_ENABLE=llvmpipe)" : ""));
}

}  // namespace dsocr

// OpenCL platform/device enumeration and selection.
//
// A device spec is "NAME[:INDEX]": NAME is a case-insensitive substring of the platform or the
// device name ("pocl" also matches "Portable Computing Language"), INDEX picks among the matches
// (default 0). A bare integer picks from the list of all devices. An empty spec means
// $DSOCR_DEVICE, else the first GPU, else the first device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cl.h"

namespace dsocr {

struct DeviceInfo {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  int index = 0;               // position in list_devices()
  std::string tag;             // short platform tag: "pocl", "rusticl", "nvidia", ...
  std::string platform_name, platform_version;
  std::string name, vendor, driver_version, device_version, opencl_c_version;
  std::string extensions;
  bool is_gpu = false;
  uint32_t compute_units = 0;
  uint64_t global_mem = 0, max_alloc = 0, local_mem = 0;
  size_t max_work_group = 0;
  bool fp16 = false, fp64 = false, subgroups = false, images = false;

  bool has_extension(const std::string& ext) const;
  std::string label() const;  // "tag:device name"
};

// Every device of every platform, in platform order. Platforms without devices are skipped.
std::vector<DeviceInfo> list_devices();

// Picks a device by spec (see above). Throws Error listing the devices when nothing matches.
DeviceInfo select_device(const std::string& spec = {});

}  // namespace dsocr

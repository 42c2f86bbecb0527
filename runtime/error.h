// Errors: every failure throws dsocr::Error carrying what failed and why.
// Only main() catches. OpenCL status codes are reported by their symbolic name.
#pragma once
#include <stdexcept>
#include <string>

#include "runtime/cl.h"

namespace dsocr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when a buffer cannot be allocated on the device (size, free and total in the text).
class OutOfDeviceMemory : public Error {
 public:
  using Error::Error;
};

// Thrown for a case or feature that exists in the model family but is not implemented yet.
class NotImplemented : public Error {
 public:
  using Error::Error;
};

const char* cl_error_name(cl_int status);

// Throws Error("<call> failed: CL_XXX (-n)<detail>") unless status == CL_SUCCESS.
void check_cl(cl_int status, const char* call, const std::string& detail = {});

}  // namespace dsocr

// OpenCL C sources: embedded at build time (default) or read from the source tree
// (cmake -DDSOCR_EMBED_KERNELS=OFF, or $DSOCR_KERNEL_DIR at run time, for kernel development).
// `#include "x.cl"` lines are resolved here, so the device compiler never needs a path.
#pragma once
#include <string>
#include <vector>

namespace dsocr {

// The full text of kernels/<file>, includes expanded. Throws Error if it does not exist.
std::string kernel_source(const std::string& file);

// Every kernel file available (embedded, or *.cl in the kernel directory), sorted.
std::vector<std::string> kernel_files();

// Where sources come from: "embedded" or the directory read.
std::string kernel_source_origin();

}  // namespace dsocr

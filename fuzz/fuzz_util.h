// Helpers shared by the fuzz targets: a file holding the input for APIs that take a path, and
// the rule for exceptions (dsocr::Error, NotImplemented and GoldenError are the expected answer
// to bad input; any other exception escapes and is reported as a finding).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/error.h"

namespace dsocr::fuzz {

// An in-memory file (memfd) rewritten for every input; path() opens it like any file.
class MemFile {
 public:
  MemFile() {
    fd_ = memfd_create("dsocr-fuzz", 0);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0 || (size && pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size))) {
      std::perror("memfd write");
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Source tree folder given by CMake (seed files some targets load once).
inline std::string source_dir() { return DSOCR_FUZZ_SOURCE_DIR; }

}  // namespace dsocr::fuzz

// Runs `body`; dsocr::Error (and its subclasses) is an accepted outcome.
#define DSOCR_FUZZ_EXPECT_ERRORS(...) \
  try {                               \
    __VA_ARGS__;                      \
  } catch (const dsocr::Error&) {     \
  }

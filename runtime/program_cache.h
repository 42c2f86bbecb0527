// Builds OpenCL programs with #define specialisation and keeps their binaries on disk.
//
// The disk key hashes (source, options, device name and version, driver version, platform name
// and version). Writes go to a temporary file renamed into place (atomic); an unusable folder
// silently bypasses the cache. Environment:
//   DSOCR_CACHE_DIR   the folder (default $XDG_CACHE_HOME/dsocr or ~/.cache/dsocr)
//   DSOCR_CACHE=0     off
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cl.h"
#include "runtime/device.h"

namespace dsocr {

// The cache folder: $DSOCR_CACHE_DIR, else $XDG_CACHE_HOME/dsocr, else ~/.cache/dsocr ("" if none).
std::string default_cache_dir();

// Compile-time constants for a kernel file, passed as -D NAME=VALUE (ordered: stable keys).
using Defines = std::map<std::string, std::string>;

struct CacheStats {
  uint64_t hits = 0;          // loaded from a disk binary
  uint64_t misses = 0;        // compiled from source
  uint64_t stored = 0;        // binaries written
  uint64_t bypassed = 0;      // disk cache unusable or off for a build
  uint64_t damaged = 0;       // cache files found truncated or altered (removed, rebuilt)
  uint64_t store_failed = 0;  // binaries that could not be written (full disk, read-only folder)
  double seconds = 0;         // spent building or loading programs (memoised lookups excluded)
};

// One program that is not memoised yet: reported before (done = false) and after (done = true,
// with `compiled` false when it came from the disk cache and the seconds it took). For progress
// reports, and for keeping compile time out of timings (an observer may finish the queue first).
struct BuildEvent {
  std::string file, options;
  bool done = false, compiled = false;
  double seconds = 0;
};
using BuildObserver = std::function<void(const BuildEvent&)>;

class ProgramCache {
 public:
  ProgramCache(const cl::Context& ctx, const DeviceInfo& dev);

  // The built program for kernels/<file> with these defines (memoised in-process).
  // A failed build throws Error with the file, the options and the full build log.
  const cl::Program& get(const std::string& file, const Defines& defines);

  const CacheStats& stats() const { return stats_; }
  const std::string& dir() const { return dir_; }
  bool enabled() const { return enabled_; }
  std::string summary() const;  // "program cache: H hits, M misses (dir)"

  static std::string options_for(const Defines& defines);

  // Called around every program that get() builds or loads (not for memoised ones); {} for none.
  void set_build_observer(BuildObserver observer) { observer_ = std::move(observer); }

 private:
  cl::Program build(const std::string& file, const std::string& source, const std::string& options);
  bool try_load(const std::string& path, const std::string& file, const std::string& options, cl::Program& out);
  void store(const std::string& path, const cl::Program& prog);

  cl::Context ctx_;
  DeviceInfo dev_;
  std::string dir_;
  bool enabled_ = false;
  CacheStats stats_;
  std::map<std::string, cl::Program> memo_;
  BuildObserver observer_;
};

}  // namespace dsocr

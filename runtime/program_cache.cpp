#include "runtime/program_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/error.h"
#include "runtime/kernel_source.h"

namespace dsocr {
namespace {

constexpr const char* kCacheFormat = "dsocr-program-cache-2";
// A cache file: this magic, the binary's length and its two FNV-1a hashes (little-endian 64-bit),
// then the driver's binary. A file that is short, long or altered (a full disk, a crash during a
// copy, another tool) is never handed to the driver: it is rebuilt from source and replaced.
constexpr char kFileMagic[8] = {'d', 's', 'o', 'c', 'r', 'b', 'i', 'n'};
constexpr size_t kHeaderBytes = sizeof(kFileMagic) + 3 * sizeof(uint64_t);

// 128-bit key from two independent 64-bit FNV-1a passes (different offsets and a final mix).
uint64_t fnv1a(const std::string& s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

uint64_t binary_hash(const unsigned char* p, size_t n, uint64_t seed) {
  return fnv1a(std::string(reinterpret_cast<const char*>(p), n), seed);
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::string default_cache_dir() {
  if (const char* d = std::getenv("DSOCR_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/dsocr";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/dsocr";
  return {};
}

namespace {

std::string default_dir() { return default_cache_dir(); }

std::string build_log(const cl::Program& p, const DeviceInfo& dev) {
  size_t n = 0;
  clGetProgramBuildInfo(p(), dev.device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  if (n) clGetProgramBuildInfo(p(), dev.device, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  return log;
}

}  // namespace

ProgramCache::ProgramCache(const cl::Context& ctx, const DeviceInfo& dev) : ctx_(ctx), dev_(dev) {
  const char* off = std::getenv("DSOCR_CACHE");
  if (off && (std::string(off) == "0" || std::string(off) == "off")) return;
  dir_ = default_dir();
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  enabled_ = !ec && access(dir_.c_str(), W_OK | R_OK) == 0;
}

std::string ProgramCache::options_for(const Defines& defines) {
  std::string o = "-cl-std=CL1.2";
  for (auto& [k, v] : defines) o += v.empty() ? fmt::format(" -D {}", k) : fmt::format(" -D {}={}", k, v);
  return o;
}

std::string ProgramCache::summary() const {
  std::string extra;
  if (stats_.damaged) extra += fmt::format(", {} damaged files rebuilt", stats_.damaged);
  if (stats_.store_failed) extra += fmt::format(", {} not stored (folder full or not writable)", stats_.store_failed);
  return fmt::format("program cache: {} hits, {} misses, {} stored{} ({})", stats_.hits, stats_.misses, stats_.stored,
                     extra, enabled_ ? dir_ : std::string("off"));
}

const cl::Program& ProgramCache::get(const std::string& file, const Defines& defines) {
  std::string options = options_for(defines);
  std::string memo_key = file + "\n" + options;
  if (auto it = memo_.find(memo_key); it != memo_.end()) return it->second;

  const auto t0 = std::chrono::steady_clock::now();
  if (observer_) observer_({file, options, false, false, 0});
  std::string source = kernel_source(file);
  cl::Program prog;
  bool loaded = false;
  std::string path;
  if (enabled_) {
    std::string key = std::string(kCacheFormat) + "\n" + source + "\n" + options + "\n" + dev_.name + "\n" +
                      dev_.device_version + "\n" + dev_.driver_version + "\n" + dev_.platform_name + "\n" +
                      dev_.platform_version;
    path = fmt::format("{}/{:016x}{:016x}.bin", dir_, fnv1a(key, 0xcbf29ce484222325ULL),
                       fnv1a(key, 0x84222325cbf29ce4ULL));
    loaded = try_load(path, file, options, prog);
  } else {
    stats_.bypassed++;
  }
  if (loaded) {
    stats_.hits++;
  } else {
    prog = build(file, source, options);
    stats_.misses++;
    if (enabled_) store(path, prog);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.seconds += seconds;
  if (observer_) observer_({file, options, true, !loaded, seconds});
  return memo_.emplace(memo_key, std::move(prog)).first->second;
}

cl::Program ProgramCache::build(const std::string& file, const std::string& source, const std::string& options) {
  const char* src = source.c_str();
  size_t len = source.size();
  cl_int err = CL_SUCCESS;
  cl_program p = clCreateProgramWithSource(ctx_(), 1, &src, &len, &err);
  check_cl(err, "clCreateProgramWithSource", "kernels/" + file);
  cl::Program prog(p);  // takes ownership
  err = clBuildProgram(p, 1, &dev_.device, options.c_str(), nullptr, nullptr);
  if (err != CL_SUCCESS) {
    throw Error(fmt::format("building kernels/{} for {} failed: {} ({})\noptions: {}\nbuild log:\n{}", file,
                            dev_.label(), cl_error_name(err), err, options, build_log(prog, dev_)));
  }
  return prog;
}

bool ProgramCache::try_load(const std::string& path, const std::string& /*file*/, const std::string& options,
                            cl::Program& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const unsigned char* bin = data.data() + kHeaderBytes;
  const size_t len = data.size() > kHeaderBytes ? data.size() - kHeaderBytes : 0;
  const bool intact = data.size() > kHeaderBytes && std::equal(kFileMagic, kFileMagic + 8, data.begin()) &&
                      get_u64(data.data() + 8) == len &&
                      get_u64(data.data() + 16) == binary_hash(bin, len, 0xcbf29ce484222325ULL) &&
                      get_u64(data.data() + 24) == binary_hash(bin, len, 0x84222325cbf29ce4ULL);
  if (!intact) {
    stats_.damaged++;
    std::remove(path.c_str());  // best effort; rebuilt and stored again by the caller
    return false;
  }
  cl_int status = CL_SUCCESS, err = CL_SUCCESS;
  cl_program p = clCreateProgramWithBinary(ctx_(), 1, &dev_.device, &len, &bin, &status, &err);
  if (err != CL_SUCCESS || status != CL_SUCCESS || !p) {
    if (p) clReleaseProgram(p);
    return false;
  }
  cl::Program prog(p);
  if (clBuildProgram(p, 1, &dev_.device, options.c_str(), nullptr, nullptr) != CL_SUCCESS) return false;
  out = std::move(prog);
  return true;
}

// Written to a temporary file, checked after closing (a full disk shows up at the flush) and
// renamed into place; any failure leaves no file behind and only costs the next run a build.
void ProgramCache::store(const std::string& path, const cl::Program& prog) {
  size_t size = 0;
  if (clGetProgramInfo(prog(), CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, nullptr) != CL_SUCCESS || size == 0)
    return;
  std::vector<unsigned char> bin(size);
  unsigned char* ptr = bin.data();
  if (clGetProgramInfo(prog(), CL_PROGRAM_BINARIES, sizeof(ptr), &ptr, nullptr) != CL_SUCCESS) return;
  std::string header(kFileMagic, sizeof(kFileMagic));
  put_u64(header, size);
  put_u64(header, binary_hash(bin.data(), size, 0xcbf29ce484222325ULL));
  put_u64(header, binary_hash(bin.data(), size, 0x84222325cbf29ce4ULL));
  std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(getpid()));
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary);
    if (out) {
      out.write(header.data(), static_cast<std::streamsize>(header.size()));
      out.write(reinterpret_cast<const char*>(bin.data()), static_cast<std::streamsize>(bin.size()));
      out.close();
      ok = !out.fail();
    }
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    stats_.store_failed++;
    return;
  }
  stats_.stored++;
}

}  // namespace dsocr

#include "bench/startup.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/image.h"
#include "ocr/draw.h"
#include "runtime/error.h"

extern char** environ;

namespace dsocr::bench {
namespace fs = std::filesystem;
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv with DSOCR_CACHE_DIR = cache (empty: the environment's) and, when driver_cache is set,
// the drivers' own caches in that folder (NVIDIA's compute cache, PoCL's kernel cache, Mesa's
// shader cache), stdout and stderr to files; returns the exit status and the wall seconds.
int run_child(const std::vector<std::string>& argv, const std::string& cache, const std::string& driver_cache,
              const std::string& out, const std::string& err, double& wall_s) {
  static const char* const kOurs[] = {"DSOCR_CACHE_DIR=", "DSOCR_CACHE="};
  static const char* const kDrivers[] = {"CUDA_CACHE_PATH=",  "CUDA_CACHE_DISABLE=",   "POCL_CACHE_DIR=",
                                         "POCL_KERNEL_CACHE=", "MESA_SHADER_CACHE_DIR=", "MESA_SHADER_CACHE_DISABLE="};
  auto starts = [](const char* e, const char* p) { return std::strncmp(e, p, std::strlen(p)) == 0; };
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    bool drop = false;
    if (!cache.empty())
      for (const char* p : kOurs) drop = drop || starts(*e, p);
    if (!driver_cache.empty())
      for (const char* p : kDrivers) drop = drop || starts(*e, p);
    if (!drop) env_s.emplace_back(*e);
  }
  if (!cache.empty()) env_s.push_back("DSOCR_CACHE_DIR=" + cache);
  if (!driver_cache.empty()) {  // empty for the first run, filled by it for the next ones
    env_s.push_back("CUDA_CACHE_PATH=" + driver_cache + "/nvidia");
    env_s.push_back("POCL_CACHE_DIR=" + driver_cache + "/pocl");
    env_s.push_back("MESA_SHADER_CACHE_DIR=" + driver_cache + "/mesa");
  }
  std::vector<char*> envp, args;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_s = argv;
  for (auto& s : argv_s) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw Error(fmt::format("bench startup: cannot start {}: {}", argv[0], std::strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::vector<StartupRun> bench_startup(const StartupOptions& o) {
  std::error_code ec;
  const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) throw Error(fmt::format("bench startup: cannot find the running executable: {}", ec.message()));
  if (!fs::is_directory(o.checkpoint))
    throw Error(fmt::format("bench startup: --checkpoint {} is not a folder", o.checkpoint));
  std::string tmpl = (fs::temp_directory_path() / "dsocr-bench-startup-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw Error(fmt::format("bench startup: cannot make a temporary folder"));
  const fs::path tmp(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{tmp};
  std::string image = o.image;
  if (image.empty()) {  // a page of dark bars on white, 1024 x 1024
    RgbImage im;
    im.width = im.height = 1024;
    im.rgb.assign(static_cast<size_t>(1024) * 1024 * 3, 255);
    for (int y = 0; y < 1024; ++y)
      for (int x = 64; x < 960; ++x)
        if ((y / 12) % 3 == 0 && ((x / 40) % 5) != 4)
          for (int c = 0; c < 3; ++c) im.rgb[(static_cast<size_t>(y) * 1024 + x) * 3 + c] = 30;
    image = (tmp / "page.png").string();
    write_image(image, im);
  }
  std::vector<std::string> argv = {self,
                                   "ocr",
                                   "--model",
                                   o.checkpoint,
                                   "--mode",
                                   o.mode,
                                   "--task",
                                   "free",
                                   "--format",
                                   "json",
                                   "--quiet",
                                   "--max-new-tokens",
                                   std::to_string(o.tokens)};
  if (!o.device.empty()) argv.insert(argv.end(), {"--device", o.device});
  argv.push_back(image);
  const std::string cache = o.cold ? (tmp / "program-cache").string() : std::string();
  const std::string driver_cache = o.cold ? (tmp / "driver-caches").string() : std::string();
  const std::string out = (tmp / "out.json"), err = (tmp / "err.txt");
  std::vector<StartupRun> runs;
  std::vector<const char*> which_runs = {"cold", "warm", "warm"};
  if (!o.cold) which_runs.erase(which_runs.begin());
  for (const char* which : which_runs) {
    StartupRun r;
    r.cache = which;
    const int rc = run_child(argv, cache, driver_cache, out, err, r.wall_s);
    if (rc != 0) throw Error(fmt::format("bench startup: dsocr ocr exited {}: {}", rc, slurp(err)));
    nlohmann::json j = nlohmann::json::parse(slurp(out), nullptr, false);
    if (j.is_discarded() || !j.contains("timings"))
      throw Error(fmt::format("bench startup: dsocr ocr printed no page JSON: {}", slurp(out).substr(0, 300)));
    const auto& t = j["timings"];
    r.load_s = t.value("load_s", 0.0);
    r.compile_s = t.value("compile_s", 0.0);
    r.preprocess_s = t.value("preprocess_s", 0.0);
    r.vision_s = t.value("vision_s", 0.0);
    r.prefill_s = t.value("prefill_s", 0.0);
    r.decode_s = t.value("decode_s", 0.0);
    r.decode_tok_s = t.value("decode_tok_s", 0.0);
    r.tokens = j["tokens"].value("generated", int64_t{0});
    r.first_token_s = r.wall_s - r.decode_s;  // the exit after the last token is counted in: an upper bound
    runs.push_back(r);
  }
  return runs;
}

}  // namespace dsocr::bench

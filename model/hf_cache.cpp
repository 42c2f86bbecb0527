#include "model/hf_cache.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace dsocr {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);  // follows the hub cache's symlinks into blobs/
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// A directory that should be a checkpoint: config.json and tokenizer.json must be there.
void check_checkpoint(const fs::path& dir, const std::string& spec, const std::string& repo_id) {
  const std::string hint =
      repo_id.empty() ? std::string()
                      : fmt::format("; the download may be incomplete, run again: {}", hf_download_command(repo_id));
  if (!is_file(dir / "config.json"))
    throw Error(
        fmt::format("{} is not a checkpoint directory: no config.json (expected the Hugging Face layout: "
                    "config.json, tokenizer.json, *.safetensors){}",
                    dir.string(), hint));
  if (!is_file(dir / "tokenizer.json"))
    throw Error(fmt::format("checkpoint {} has no tokenizer.json{}", dir.string(), hint));
  (void)spec;
}

}  // namespace

std::string hf_hub_cache_dir() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return (fs::path(v) / "hub").string();
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return (fs::path(v) / "huggingface" / "hub").string();
  std::string home = env("HOME");
  return (fs::path(home.empty() ? "." : home) / ".cache" / "huggingface" / "hub").string();
}

bool looks_like_repo_id(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size()) return false;
  if (s.find('/', slash + 1) != std::string::npos) return false;
  auto part_ok = [](const std::string& p) {
    if (p.empty() || p.size() > 96 || p[0] == '.' || p[0] == '-' || p.find("..") != std::string::npos) return false;
    for (char c : p)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
  };
  return part_ok(s.substr(0, slash)) && part_ok(s.substr(slash + 1));
}

std::string hf_repo_dir(const std::string& hub, const std::string& repo_id) {
  std::string name = "models--" + repo_id;
  for (size_t i = 0; (i = name.find('/', i)) != std::string::npos;) name.replace(i, 1, "--");
  return (fs::path(hub) / name).string();
}

std::string hf_download_command(const std::string& repo_id) { return "huggingface-cli download " + repo_id; }

std::string hf_snapshot_of_repo_dir(const std::string& repo_dir) {
  fs::path snaps = fs::path(repo_dir) / "snapshots";
  if (!is_dir(snaps)) return {};
  std::ifstream ref(fs::path(repo_dir) / "refs" / "main");
  if (ref) {
    std::string rev((std::istreambuf_iterator<char>(ref)), std::istreambuf_iterator<char>());
    rev = trim(rev);
    if (!rev.empty() && rev.find('/') == std::string::npos && rev != "." && rev != ".." && is_dir(snaps / rev))
      return (snaps / rev).string();
  }
  // No usable refs/main: the newest snapshot, preferring one with a config.json.
  fs::path best;
  bool best_complete = false;
  fs::file_time_type best_t{};
  std::error_code ec;
  for (auto& e : fs::directory_iterator(snaps, ec)) {
    if (!is_dir(e.path())) continue;
    bool complete = is_file(e.path() / "config.json");
    auto t = fs::last_write_time(e.path(), ec);
    if (best.empty() || (complete && !best_complete) || (complete == best_complete && t > best_t)) {
      best = e.path();
      best_complete = complete;
      best_t = t;
    }
  }
  return best.string();
}

ModelLocation resolve_model(const std::string& spec, const std::string& hub_arg) {
  if (spec.empty()) throw Error("--model is empty");
  fs::path p(spec);
  if (is_dir(p)) {
    if (!is_file(p / "config.json") && is_dir(p / "snapshots")) {  // a hub repository folder
      std::string snap = hf_snapshot_of_repo_dir(p.string());
      if (snap.empty()) throw Error(fmt::format("{} has no snapshot (an unfinished Hugging Face download?)", spec));
      check_checkpoint(snap, spec, {});
      return {snap, fmt::format("{} (snapshot {})", spec, fs::path(snap).filename().string())};
    }
    check_checkpoint(p, spec, {});
    return {p.string(), p.string()};
  }
  if (is_file(p)) throw Error(fmt::format("--model {}: a file; expected a checkpoint directory or a repo id", spec));
  if (!looks_like_repo_id(spec) || spec[0] == '.' || spec[0] == '/' || spec[0] == '~')
    throw ModelNotFound(fmt::format("model directory {} does not exist", spec));

  const std::string hub = hub_arg.empty() ? hf_hub_cache_dir() : hub_arg;
  const std::string repo = hf_repo_dir(hub, spec);
  std::string snap = hf_snapshot_of_repo_dir(repo);
  if (snap.empty())
    throw ModelNotFound(
        fmt::format("model {} is not in the Hugging Face cache (looked for {}; no directory of that name either).\n"
                    "Download it (about 6.7 GB) with:\n"
                    "  {}\n"
                    "(or, with a recent huggingface_hub: hf download {}), then run again; or pass --model DIR with a "
                    "checkpoint directory",
                    spec, (fs::path(repo) / "snapshots").string(), hf_download_command(spec), spec));
  check_checkpoint(snap, spec, spec);
  return {snap, fmt::format("{} (Hugging Face cache, snapshot {})", spec, fs::path(snap).filename().string())};
}

std::string bundled_demo_model_dir() {
  std::string dir = env("DSOCR_DEMO_MODEL");
  if (dir.empty()) dir = (fs::path(DSOCR_KERNEL_DIR).parent_path() / "models" / "dsocr-demo").string();
  return is_file(fs::path(dir) / "config.json") ? dir : std::string();
}

std::string default_model_spec(const std::string& repo_id, std::string& note, const std::string& hub_arg) {
  note.clear();
  const std::string hub = hub_arg.empty() ? hf_hub_cache_dir() : hub_arg;
  if (!hf_snapshot_of_repo_dir(hf_repo_dir(hub, repo_id)).empty()) return repo_id;
  const std::string demo = bundled_demo_model_dir();
  if (demo.empty()) return repo_id;  // resolve_model then says how to download it
  note = fmt::format(
      "{} is not downloaded (not in the Hugging Face cache {}): using dsocr's demo model {}, a small model trained "
      "on synthetic printed text (see its README). For real documents download the released model with: {}",
      repo_id, hub, demo, hf_download_command(repo_id));
  return demo;
}

}  // namespace dsocr

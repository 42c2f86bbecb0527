// The command-line helpers shared by the subcommands (apps/commands.h).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "apps/commands.h"

namespace dsocr {
namespace fs = std::filesystem;

bool Args::flag(const std::string& name) {
  const auto n = args_.size();
  args_.erase(std::remove(args_.begin(), args_.end(), name), args_.end());
  return args_.size() != n;
}

bool Args::given(const std::string& name) const {
  for (auto& a : args_)
    if (a == name || a.rfind(name + "=", 0) == 0) return true;
  return false;
}

std::string Args::value(const std::string& name, const std::string& fallback) {
  std::string v = fallback;  // an option given twice: the last one counts
  for (auto it = args_.begin(); it != args_.end();) {
    if (*it == name) {
      if (it + 1 == args_.end()) throw UsageError(name + " needs a value");
      v = *(it + 1);
      it = args_.erase(it, it + 2);
    } else if (it->rfind(name + "=", 0) == 0) {
      v = it->substr(name.size() + 1);
      it = args_.erase(it);
    } else {
      ++it;
    }
  }
  return v;
}

int64_t Args::integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!given(name)) return fallback;
  std::string v = value(name);
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || used == 0) throw UsageError(fmt::format("{} {}: not an integer", name, v));
  if (x < lo || x > hi) throw UsageError(fmt::format("{} {}: must be in {}..{}", name, v, lo, hi));
  return x;
}

double Args::number(const std::string& name, double fallback, double lo, double hi) {
  if (!given(name)) return fallback;
  std::string v = value(name);
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || used == 0) throw UsageError(fmt::format("{} {}: not a number", name, v));
  if (!(x >= lo && x <= hi)) throw UsageError(fmt::format("{} {}: must be in {}..{}", name, v, lo, hi));
  return x;
}

std::vector<std::string> Args::positional() {
  for (auto& a : args_)
    if (a.size() > 1 && a[0] == '-' && a != "-") throw UsageError("unknown option " + a);
  return args_;
}

namespace {

// Whether a file can be created in the folder dir (a temporary file, removed at once: permission
// bits alone say nothing for root or on a read-only file system). "" when it can, else why not.
std::string probe_folder(const fs::path& dir) {
  std::string tmpl = (dir / ".dsocr-probe-XXXXXX").string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return std::strerror(errno);
  close(fd);
  std::remove(tmpl.c_str());
  return {};
}

}  // namespace

void check_output_file(const std::string& option, const std::string& path) {
  if (path.empty()) throw UsageError(option + " needs a file name");
  std::error_code ec;
  fs::path p(path);
  if (fs::is_directory(p, ec)) throw UsageError(fmt::format("{} {}: a folder, not a file", option, path));
  fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(dir, ec)) throw UsageError(fmt::format("{} {}: no folder {}", option, path, dir.string()));
  if (std::string why = probe_folder(dir); !why.empty())
    throw UsageError(fmt::format("{} {}: cannot write in {}: {}", option, path, dir.string(), why));
}

void check_output_dir(const std::string& option, const std::string& path) {
  if (path.empty()) throw UsageError(option + " needs a folder name");
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  if (fs::exists(p, ec) && !fs::is_directory(p, ec)) throw UsageError(fmt::format("{} {}: not a folder", option, path));
  fs::path existing = p;  // the folder itself, or the nearest ancestor that exists
  while (!fs::exists(existing, ec) && existing.has_parent_path() && existing.parent_path() != existing)
    existing = existing.parent_path();
  if (!fs::is_directory(existing, ec))
    throw UsageError(fmt::format("{} {}: {} is not a folder", option, path, existing.string()));
  if (std::string why = probe_folder(existing); !why.empty())
    throw UsageError(fmt::format("{} {}: cannot write in {}: {}", option, path, existing.string(), why));
}

}  // namespace dsocr

#include "ocr/corpus.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/error.h"

namespace dsocr {
namespace fs = std::filesystem;

std::vector<std::string> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("manifest {}: cannot read it ({})", path, std::strerror(errno)));
  const fs::path base = fs::path(path).parent_path();
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
    if (a == std::string::npos || line[a] == '#') continue;
    const std::string item = line.substr(a, b - a + 1);
    const fs::path p(item);
    out.push_back(item == "-" || p.is_absolute() || base.empty() ? item : (base / p).string());
  }
  if (in.bad()) throw Error(fmt::format("manifest {}: read error", path));
  if (out.empty()) throw Error(fmt::format("manifest {} lists no input", path));
  return out;
}

Shard parse_shard(const std::string& spec) {
  const size_t slash = spec.find('/');
  auto number = [&](size_t from, size_t to, int& v) {
    const auto r = std::from_chars(spec.data() + from, spec.data() + to, v);
    return from < to && r.ec == std::errc() && r.ptr == spec.data() + to;
  };
  Shard s;
  if (slash == std::string::npos || !number(0, slash, s.index) || !number(slash + 1, spec.size(), s.count) ||
      s.count < 1 || s.count > 1000000 || s.index < 0 || s.index >= s.count)
    throw Error(fmt::format("shard {}: expected I/N with 0 <= I < N (e.g. 0/4 ... 3/4)", spec));
  return s;
}

ResultStore::ResultStore(std::string dir, std::string ext) : dir_(std::move(dir)), ext_(std::move(ext)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw Error(fmt::format("results folder {}: cannot create it ({})", dir_, ec ? ec.message() : "not a folder"));
}

std::string ResultStore::path(const std::string& source, int page) const {
  std::string key;
  for (unsigned char c : source) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-')
      key += static_cast<char>(c);
    else
      key += fmt::format("%{:02X}", c);
  }
  if (key.size() > 180) {  // file names end at 255 bytes: a long path keeps its tail and a hash of it all
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : source) h = (h ^ c) * 1099511628211ull;
    key = fmt::format("{:016x}-{}", h, key.substr(key.size() - 160));
  }
  return (fs::path(dir_) / fmt::format("{}.p{}.{}", key, page, ext_)).string();
}

bool ResultStore::has(const std::string& source, int page) const {
  std::error_code ec;
  return fs::is_regular_file(path(source, page), ec);
}

void ResultStore::write(const std::string& source, int page, const std::string& content) const {
  const std::string final_path = path(source, page);
  const std::string tmp = fmt::format("{}.tmp{}", final_path, static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error(fmt::format("results: cannot write {} ({})", tmp, std::strerror(errno)));
    }
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("results: cannot rename {} to {} ({})", tmp, final_path, ec.message()));
  }
}

}  // namespace dsocr

#include "runtime/kernel_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include "runtime/error.h"

namespace dsocr {

const std::map<std::string, std::string_view>& embedded_kernel_sources();  // generated

namespace {

const char* kernel_dir() {
  if (const char* env = std::getenv("DSOCR_KERNEL_DIR"); env && *env) return env;
  return DSOCR_EMBED_KERNELS ? nullptr : DSOCR_KERNEL_DIR;
}

std::string raw_source(const std::string& file) {
  if (const char* dir = kernel_dir()) {
    std::string path = std::string(dir) + "/" + file;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("kernel source {} cannot be read", path));
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  const auto& table = embedded_kernel_sources();
  auto it = table.find(file);
  if (it == table.end()) throw Error(fmt::format("kernel source kernels/{} is not embedded in this build", file));
  return std::string(it->second);
}

std::string expand(const std::string& file, int depth) {
  if (depth > 8) throw Error(fmt::format("kernels/{}: #include nesting too deep", file));
  std::istringstream in(raw_source(file));
  std::string out, line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto p = line.find_first_not_of(" \t");
    if (p != std::string::npos && line.compare(p, 8, "#include") == 0) {
      auto q1 = line.find('"', p), q2 = line.rfind('"');
      if (q1 == std::string::npos || q2 <= q1)
        throw Error(fmt::format("kernels/{}:{}: only #include \"file.cl\" is supported", file, lineno));
      out += expand(line.substr(q1 + 1, q2 - q1 - 1), depth + 1);
      out += fmt::format("#line {} \"{}\"\n", lineno + 1, file);
      continue;
    }
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

std::string kernel_source(const std::string& file) { return expand(file, 0); }

std::vector<std::string> kernel_files() {
  std::vector<std::string> out;
  if (const char* dir = kernel_dir()) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".cl") out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
  } else {
    for (auto& [name, text] : embedded_kernel_sources()) out.push_back(name);
  }
  return out;
}

std::string kernel_source_origin() {
  const char* dir = kernel_dir();
  return dir ? std::string(dir) : std::string("embedded");
}

}  // namespace dsocr

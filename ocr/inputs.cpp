#include "ocr/inputs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

#include "runtime/error.h"

namespace dsocr {
namespace fs = std::filesystem;

InputKind sniff_format(const std::vector<uint8_t>& h, std::string* what) {
  auto starts = [&](const char* sig, size_t n, size_t at = 0) {
    return h.size() >= at + n && std::memcmp(h.data() + at, sig, n) == 0;
  };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return InputKind::png;
  if (starts("\xff\xd8\xff", 3)) return InputKind::jpeg;
  // PDF readers accept a header anywhere in the first 1024 bytes.
  for (size_t i = 0; i + 5 <= std::min<size_t>(h.size(), 1024); ++i)
    if (std::memcmp(h.data() + i, "%PDF-", 5) == 0) return InputKind::pdf;
  if (what) {
    if (h.empty())
      *what = "an empty file";
    else if (starts("GIF8", 4))
      *what = "GIF";
    else if (starts("BM", 2))
      *what = "BMP";
    else if (starts("II*\0", 4) || starts("MM\0*", 4))
      *what = "TIFF";
    else if (starts("RIFF", 4) && starts("WEBP", 4, 8))
      *what = "WebP";
    else if (starts("ftyp", 4, 4))
      *what = "HEIF/AVIF/MP4";
    else if (starts("\0\0\0\x0cjP", 6))
      *what = "JPEG 2000";
    else
      *what = "not PNG, JPEG or PDF";
  }
  return InputKind::unsupported;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes) {
  std::vector<uint8_t> b;
  if (path == "-") {
    b.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return b;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(fmt::format("{}: a directory", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  if (max_bytes) {
    b.resize(max_bytes);
    in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(max_bytes));
    b.resize(static_cast<size_t>(in.gcount()));
  } else {
    b.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (in.bad()) throw Error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  return b;
}

std::vector<InputPath> expand_inputs(const std::vector<std::string>& args) {
  std::vector<InputPath> out;
  for (auto& a : args) {
    if (a == "-") {
      out.push_back({a, {}});
      continue;
    }
    std::error_code ec;
    auto st = fs::status(a, ec);
    if (ec || !fs::exists(st)) {
      out.push_back({a, fmt::format("input {} does not exist", a)});
      continue;
    }
    if (!fs::is_directory(st)) {
      out.push_back({a, {}});
      continue;
    }
    std::vector<std::string> found;
    for (auto& e : fs::directory_iterator(a, ec)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      std::error_code ec2;
      if ((ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".pdf") && fs::is_regular_file(e.path(), ec2))
        found.push_back(e.path().string());
    }
    if (ec) {
      out.push_back({a, fmt::format("cannot list {}: {}", a, ec.message())});
    } else if (found.empty()) {
      out.push_back({a, fmt::format("{} holds no PNG, JPEG or PDF file", a)});
    } else {
      std::sort(found.begin(), found.end());
      for (auto& f : found) out.push_back({f, {}});
    }
  }
  return out;
}

namespace {
struct PageRange {
  int lo, hi;  // hi < 0: open
};
std::vector<PageRange> parse_ranges(const std::string& spec) {
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("--pages '{}': {} (expected e.g. 3, 1-5, 2,4,7- or -3; pages count from 1)", spec, why));
  };
  if (spec.empty()) throw bad("empty");
  auto num = [&](const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      throw bad("'" + s + "' is not a page number");
    int v = std::stoi(s);
    if (v < 1) throw bad("there is no page 0");
    return v;
  };
  std::vector<PageRange> out;
  size_t i = 0;
  while (i <= spec.size()) {
    size_t j = spec.find(',', i);
    if (j == std::string::npos) j = spec.size();
    std::string part = spec.substr(i, j - i);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    size_t dash = part.find('-');
    if (dash == std::string::npos) {
      int v = num(part);
      out.push_back({v, v});
    } else {
      std::string a = part.substr(0, dash), b = part.substr(dash + 1);
      int lo = a.empty() ? 1 : num(a), hi = b.empty() ? -1 : num(b);
      if (a.empty() && b.empty()) throw bad("'-' names no page");
      if (hi >= 0 && hi < lo) throw bad(fmt::format("{}-{} is backwards", lo, hi));
      out.push_back({lo, hi});
    }
    i = j + 1;
  }
  return out;
}
}  // namespace

void check_pages_spec(const std::string& spec) { parse_ranges(spec); }

std::vector<int> parse_pages(const std::string& spec, int n_pages, int* dropped) {
  std::set<int> pages;
  int drop = 0;
  for (auto& r : parse_ranges(spec)) {
    int hi = r.hi < 0 ? n_pages : r.hi;
    if (hi > n_pages) drop += hi - std::max(r.lo - 1, n_pages);
    for (int p = r.lo; p <= std::min(hi, n_pages); ++p) pages.insert(p);
  }
  if (dropped) *dropped = drop;
  return {pages.begin(), pages.end()};
}

}  // namespace dsocr

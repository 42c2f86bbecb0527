// Shared by the test_ocr executable's files: paths of the committed test data, the tiny engine,
// error capture, scratch folders and a minimal PDF writer.
#pragma once
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <regex>
#include <string>

#include "harness/harness.h"
#include "ocr/draw.h"
#include "parity/golden.h"
#include "model/hf_cache.h"
#include "model/image.h"
#include "ocr/ocr.h"
#include "model/preprocess.h"


namespace ocr_test {
using namespace dsocr;
using namespace dsocr::test;
namespace fs = std::filesystem;


inline std::string src_dir() {
  const char* src = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(src ? src : DSOCR_KERNEL_DIR "/..");
}
inline std::string ckpt_dir() { return src_dir() + "/tests/goldens/tiny-ckpt"; }
inline std::string golden(const std::string& name) { return src_dir() + "/tests/goldens/model/" + name + ".h5"; }
inline std::string image_path(const std::string& name) { return src_dir() + "/tests/goldens/images/" + name; }

inline const Tokenizer& tok() {
  static Tokenizer t = Tokenizer::from_file(ckpt_dir() + "/tokenizer.json");
  return t;
}

inline OcrEngine& engine() {
  static OcrEngine e = load_engine(rt(), ckpt_dir());
  return e;
}

inline std::vector<int32_t> ids_of(const HostArray& a) { return {a.i.begin(), a.i.end()}; }

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A scratch folder removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "dsocr-test-ocr-XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& s) const { return (path / s).string(); }
};

inline void write_text(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }

// A PDF whose pages are (width, height, content stream) in points, with a correct xref table.
inline std::string make_pdf(const std::vector<std::tuple<int, int, std::string>>& pages) {
  std::vector<std::string> objs;
  std::string kids;
  const int n = static_cast<int>(pages.size());
  for (int i = 0; i < n; ++i) kids += fmt::format("{} 0 R ", 3 + 2 * i);
  objs.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  objs.push_back(fmt::format("<< /Type /Pages /Kids [{}] /Count {} >>", kids, n));
  for (int i = 0; i < n; ++i) {
    auto& [w, h, content] = pages[i];
    objs.push_back(
        fmt::format("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Contents {} 0 R >>", w, h, 4 + 2 * i));
    objs.push_back(fmt::format("<< /Length {} >>\nstream\n{}\nendstream", content.size(), content));
  }
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> off;
  for (size_t i = 0; i < objs.size(); ++i) {
    off.push_back(pdf.size());
    pdf += fmt::format("{} 0 obj\n{}\nendobj\n", i + 1, objs[i]);
  }
  size_t xref = pdf.size();
  pdf += fmt::format("xref\n0 {}\n0000000000 65535 f \n", objs.size() + 1);
  for (size_t o : off) pdf += fmt::format("{:010d} 00000 n \n", o);
  pdf += fmt::format("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n", objs.size() + 1, xref);
  return pdf;
}

}  // namespace ocr_test

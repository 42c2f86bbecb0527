// PDF pages rendered through poppler-cpp (DSOCR_PDF=ON) as the official PDF script renders them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/image.h"

namespace dsocr {

bool pdf_supported();  // built with poppler-cpp (DSOCR_PDF=ON)

// A PDF document; pages rendered as PyMuPDF's get_pixmap(Matrix(dpi/72, dpi/72), alpha=False)
// would be: antialiased, on white. Throws Error for a corrupt, encrypted or empty file, and for a
// page larger than max_pixels at the requested resolution.
class PdfDocument {
 public:
  static PdfDocument open_file(const std::string& path);
  static PdfDocument open_bytes(std::vector<uint8_t> bytes, const std::string& name);
  ~PdfDocument();
  PdfDocument(PdfDocument&&) noexcept;
  PdfDocument& operator=(PdfDocument&&) noexcept;
  int pages() const;
  RgbImage render(int page, double dpi, int64_t max_pixels = int64_t(1) << 27) const;  // page: 1-based

 private:
  PdfDocument();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsocr

// Fuzz target: PDF pages through PdfDocument (poppler-cpp behind model/ocr.cpp's wrapper): open
// from memory, then render the first two pages at 18 dpi with a 1-megapixel cap (small, so that
// the fuzzer runs many inputs). poppler is not instrumented; its crashes are still reported.
#include "fuzz/fuzz_util.h"
#include "ocr/ocr.h"

using namespace dsocr;

// fontconfig (loaded by poppler's font lookup) keeps its configuration for the life of the
// process and never frees it: LeakSanitizer reports ~300 bytes at exit after any run. Not ours.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig\n"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DSOCR_FUZZ_EXPECT_ERRORS({
    PdfDocument doc = PdfDocument::open_bytes(std::vector<uint8_t>(data, data + size), "fuzz.pdf");
    for (int p = 1; p <= doc.pages() && p <= 2; ++p) {
      RgbImage im = doc.render(p, 18.0, int64_t(1) << 20);
      if (im.rgb.size() != size_t(im.width) * im.height * 3) __builtin_trap();
    }
  });
  return 0;
}

#include "ocr/pdf.h"

#include <fmt/format.h>

#include <cstring>

#include "ocr/inputs.h"
#include "runtime/error.h"

#if DSOCR_HAVE_PDF
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-image.h>
#include <poppler/cpp/poppler-page-renderer.h>
#include <poppler/cpp/poppler-page.h>
#endif

namespace dsocr {

#if DSOCR_HAVE_PDF
struct PdfDocument::Impl {
  std::vector<uint8_t> bytes;  // kept alive for load_from_raw_data
  std::unique_ptr<poppler::document> doc;
  std::string name;
};

namespace {
thread_local std::string g_poppler_last;
void poppler_message(const std::string& msg, void*) { g_poppler_last = msg; }
void quiet_poppler() {
  static bool done = [] {
    poppler::set_debug_error_function(poppler_message, nullptr);
    return true;
  }();
  (void)done;
}
}  // namespace

bool pdf_supported() { return true; }
PdfDocument::PdfDocument() = default;
PdfDocument::~PdfDocument() = default;
PdfDocument::PdfDocument(PdfDocument&&) noexcept = default;
PdfDocument& PdfDocument::operator=(PdfDocument&&) noexcept = default;

PdfDocument PdfDocument::open_file(const std::string& path) { return open_bytes(read_file_bytes(path), path); }

PdfDocument PdfDocument::open_bytes(std::vector<uint8_t> bytes, const std::string& name) {
  quiet_poppler();
  g_poppler_last.clear();
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw Error(fmt::format("{}: PDF larger than 2 GiB", name));
  auto d = std::make_unique<Impl>();
  d->bytes = std::move(bytes);
  d->name = name;
  d->doc.reset(poppler::document::load_from_raw_data(reinterpret_cast<const char*>(d->bytes.data()),
                                                     static_cast<int>(d->bytes.size())));
  if (!d->doc) {
    std::string why = g_poppler_last.empty() ? "" : ": " + g_poppler_last;
    throw Error(fmt::format("{}: corrupt or unreadable PDF{}", d->name, why));
  }
  if (d->doc->is_locked()) throw Error(fmt::format("{}: encrypted PDF (a password is needed)", d->name));
  if (d->doc->pages() <= 0) throw Error(fmt::format("{}: PDF has no pages", d->name));
  PdfDocument p;
  p.impl_ = std::move(d);
  return p;
}

int PdfDocument::pages() const { return impl_->doc->pages(); }

RgbImage PdfDocument::render(int page, double dpi, int64_t max_pixels) const {
  const std::string& name = impl_->name;
  if (page < 1 || page > pages()) throw Error(fmt::format("{}: no page {} (it has {})", name, page, pages()));
  if (!(dpi > 0)) throw Error(fmt::format("dpi {} must be positive", dpi));
  std::unique_ptr<poppler::page> pg(impl_->doc->create_page(page - 1));
  if (!pg) throw Error(fmt::format("{}: page {} cannot be read", name, page));
  poppler::rectf box = pg->page_rect(poppler::crop_box);
  double w = std::ceil(std::fabs(box.width()) * dpi / 72.0), h = std::ceil(std::fabs(box.height()) * dpi / 72.0);
  if (!(w >= 1 && h >= 1)) throw Error(fmt::format("{}: page {} has no area", name, page));
  if (w * h > static_cast<double>(max_pixels) || w > 65535 || h > 65535)
    throw Error(fmt::format("{}: page {} would be {:.0f}x{:.0f} pixels at {} dpi, too large (lower --dpi)", name, page,
                            w, h, dpi));
  poppler::page_renderer r;
  r.set_render_hint(poppler::page_renderer::antialiasing, true);
  r.set_render_hint(poppler::page_renderer::text_antialiasing, true);
  r.set_paper_color(0xffffffffu);
  r.set_image_format(poppler::image::format_argb32);
  g_poppler_last.clear();
  poppler::image img = r.render_page(pg.get(), dpi, dpi);
  if (!img.is_valid() || img.width() <= 0 || img.height() <= 0)
    throw Error(fmt::format("{}: page {} cannot be rendered{}", name, page,
                            g_poppler_last.empty() ? "" : ": " + g_poppler_last));
  RgbImage out;
  out.width = img.width();
  out.height = img.height();
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  const char* data = img.const_data();
  for (int y = 0; y < out.height; ++y) {
    const char* row = data + static_cast<size_t>(y) * img.bytes_per_row();
    for (int x = 0; x < out.width; ++x) {
      uint32_t v;
      std::memcpy(&v, row + 4 * x, 4);        // premultiplied 0xAARRGGBB, native order
      uint32_t a = v >> 24, under = 255 - a;  // composite on white
      uint8_t* p = &out.rgb[(static_cast<size_t>(y) * out.width + x) * 3];
      p[0] = static_cast<uint8_t>(std::min<uint32_t>(255, ((v >> 16) & 255) + under));
      p[1] = static_cast<uint8_t>(std::min<uint32_t>(255, ((v >> 8) & 255) + under));
      p[2] = static_cast<uint8_t>(std::min<uint32_t>(255, (v & 255) + under));
    }
  }
  return out;
}
#else
struct PdfDocument::Impl {};
bool pdf_supported() { return false; }
PdfDocument::PdfDocument() = default;
PdfDocument::~PdfDocument() = default;
PdfDocument::PdfDocument(PdfDocument&&) noexcept = default;
PdfDocument& PdfDocument::operator=(PdfDocument&&) noexcept = default;
static Error no_pdf(const std::string& name) {
  return Error(
      fmt::format("{}: this dsocr was built without PDF support (configure with -DDSOCR_PDF=ON and "
                  "poppler-cpp installed)",
                  name));
}
PdfDocument PdfDocument::open_file(const std::string& path) { throw no_pdf(path); }
PdfDocument PdfDocument::open_bytes(std::vector<uint8_t>, const std::string& name) { throw no_pdf(name); }
int PdfDocument::pages() const { return 0; }
RgbImage PdfDocument::render(int, double, int64_t) const { throw no_pdf("PDF"); }
#endif

}  // namespace dsocr

#include "ocr/ocr.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

#include "model/deepencoder.h"
#include "ocr/draw.h"
#include "model/generate.h"
#include "model/preprocess.h"

#if DSOCR_HAVE_PDF
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-image.h>
#include <poppler/cpp/poppler-page-renderer.h>
#include <poppler/cpp/poppler-page.h>
#endif

namespace dsocr {
namespace fs = std::filesystem;

// ================================================================ prompts
const std::vector<std::string>& ocr_tasks() {
  static const std::vector<std::string> t = {"markdown", "ocr", "free", "figure", "describe", "locate"};
  return t;
}

std::string task_prompt(const std::string& task, const std::string& ref) {
  if (task == "locate") {
    if (ref.empty()) throw Error("--task locate needs --ref TEXT (what to find in the image)");
    return "<image>\nLocate <|ref|>" + ref + "<|/ref|> in the image.";
  }
  if (!ref.empty()) throw Error(fmt::format("--ref is only used by --task locate (the task is {})", task));
  if (task == "markdown") return "<image>\n<|grounding|>Convert the document to markdown.";
  if (task == "ocr") return "<image>\n<|grounding|>OCR this image.";
  if (task == "free") return "<image>\nFree OCR.";
  if (task == "figure") return "<image>\nParse the figure.";
  if (task == "describe") return "<image>\nDescribe this image in detail.";
  throw Error(fmt::format("unknown task '{}' (expected markdown, ocr, free, figure, describe or locate)", task));
}

std::vector<int32_t> build_prompt_ids(const Tokenizer& tok, const std::string& text, int n_image_tokens, int32_t bos_id,
                                      int32_t image_id) {
  static const std::string tag = "<image>";
  size_t at = text.find(tag);
  if (at == std::string::npos) throw Error("the prompt has no <image> tag (it marks where the image goes)");
  if (text.find(tag, at + tag.size()) != std::string::npos)
    throw Error("the prompt has more than one <image> tag (one image per prompt)");
  if (n_image_tokens < 1) throw Error(fmt::format("{} image tokens", n_image_tokens));
  std::vector<int32_t> ids{bos_id};
  auto before = tok.encode(text.substr(0, at));
  auto after = tok.encode(text.substr(at + tag.size()));
  ids.insert(ids.end(), before.begin(), before.end());
  ids.insert(ids.end(), static_cast<size_t>(n_image_tokens), image_id);
  ids.insert(ids.end(), after.begin(), after.end());
  return ids;
}

// ================================================================ grounding
namespace {
const std::string kRef = "<|ref|>", kRefDet = "<|/ref|><|det|>", kDetEnd = "<|/det|>";

struct DetParser {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  // A Python int or float literal with an optional sign.
  bool number(double& v) {
    ws();
    size_t b = i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t d0 = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    size_t int_digits = i - d0;
    bool is_float = false;
    if (i < s.size() && s[i] == '.') {
      is_float = true;
      ++i;
      size_t f0 = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (int_digits == 0 && i == f0) return false;
    } else if (int_digits == 0) {
      return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      size_t e = i++;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
      size_t e0 = i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i == e0) {
        i = e;
        return false;
      }
      is_float = true;
    }
    // Python 3 rejects integer literals with leading zeros ("012"; "00" is fine).
    if (!is_float && int_digits > 1 && s[d0] == '0' && s.find_first_not_of('0', d0) < i) return false;
    if (i - b > 64) return false;
    v = std::strtod(s.substr(b, i - b).c_str(), nullptr);
    return std::isfinite(v);
  }
};

}  // namespace

bool parse_det(const std::string& det, std::vector<Box999>& boxes) {
  boxes.clear();
  DetParser p{det};
  if (!p.eat('[')) return false;
  std::vector<double> flat;
  bool any_list = false;
  p.ws();
  if (!p.eat(']')) {
    for (;;) {
      p.ws();
      if (p.i < det.size() && det[p.i] == '[') {
        ++p.i;
        any_list = true;
        std::vector<double> v;
        if (!p.eat(']')) {
          for (;;) {
            double x;
            if (!p.number(x)) return false;
            v.push_back(x);
            if (p.eat(']')) break;
            if (!p.eat(',')) return false;
            if (p.eat(']')) break;  // trailing comma
          }
        }
        if (v.size() == 4) boxes.push_back({v[0], v[1], v[2], v[3]});
      } else {
        double x;
        if (!p.number(x)) return false;
        flat.push_back(x);
      }
      if (p.eat(']')) break;
      if (!p.eat(',')) return false;
      if (p.eat(']')) break;
      if (boxes.size() > 100000 || flat.size() > 100000) return false;
    }
  }
  p.ws();
  if (p.i != det.size()) return false;
  if (!any_list && flat.size() == 4) boxes.push_back({flat[0], flat[1], flat[2], flat[3]});
  return true;
}

std::vector<RefMatch> find_refs(const std::string& text) {
  std::vector<RefMatch> out;
  size_t pos = 0;
  for (;;) {
    size_t r = text.find(kRef, pos);
    if (r == std::string::npos) break;
    size_t a = text.find(kRefDet, r + kRef.size());
    if (a == std::string::npos) break;  // no later start can match either
    size_t d = text.find(kDetEnd, a + kRefDet.size());
    if (d == std::string::npos) break;
    RefMatch m;
    m.begin = r;
    m.end = d + kDetEnd.size();
    m.label = text.substr(r + kRef.size(), a - r - kRef.size());
    m.det = text.substr(a + kRefDet.size(), d - a - kRefDet.size());
    m.det_ok = parse_det(m.det, m.boxes);
    out.push_back(std::move(m));
    pos = d + kDetEnd.size();
  }
  return out;
}

std::array<int, 4> scale_box(const Box999& b, int width, int height) {
  std::array<int, 4> px{};
  for (int k = 0; k < 4; ++k) {
    double v = b[k] / 999.0 * (k % 2 == 0 ? width : height);
    v = std::clamp(v, -2.0e9, 2.0e9);
    px[k] = static_cast<int>(v);  // truncation towards zero, as int()
  }
  return px;
}

std::vector<PixelBox> pixel_boxes(const std::string& text, int width, int height) {
  std::vector<PixelBox> out;
  for (auto& m : find_refs(text))
    for (auto& b : m.boxes) out.push_back({m.label, scale_box(b, width, height), b});
  return out;
}

// ================================================================ markdown
namespace {
// Length of the longest proper prefix of one of `words` that ends s.
size_t held_prefix(const std::string& s, std::initializer_list<const std::string*> words) {
  size_t best = 0;
  for (auto* w : words)
    for (size_t k = std::min(s.size(), w->size() - 1); k > best; --k)
      if (s.compare(s.size() - k, k, *w, 0, k) == 0) {
        best = k;
        break;
      }
  return best;
}
const std::string kColoneqq = "\\coloneqq", kEqqcolon = "\\eqqcolon";
}  // namespace

std::string MarkdownStream::stage1(bool final) {
  std::string out;
  for (;;) {
    size_t r = raw_.find(kRef);
    if (r == std::string::npos) {
      size_t keep = final ? 0 : held_prefix(raw_, {&kRef});
      out += raw_.substr(0, raw_.size() - keep);
      raw_.erase(0, raw_.size() - keep);
      return out;
    }
    out += raw_.substr(0, r);
    raw_.erase(0, r);
    size_t a = raw_.find(kRefDet, kRef.size());
    size_t d = a == std::string::npos ? a : raw_.find(kDetEnd, a + kRefDet.size());
    if (d == std::string::npos) {
      if (final) {  // no match from here on (see find_refs)
        out += raw_;
        raw_.clear();
      }
      return out;
    }
    std::string whole = raw_.substr(0, d + kDetEnd.size());
    auto ms = find_refs(whole);
    if (ms.size() == 1 && whole.find("<|ref|>image<|/ref|>") != std::string::npos && on_image_) out += on_image_(ms[0]);
    raw_.erase(0, whole.size());
  }
}

std::string MarkdownStream::stage2(const std::string& in, bool final) {
  mid_ += in;
  size_t keep = final ? 0 : held_prefix(mid_, {&kColoneqq, &kEqqcolon});
  size_t n = mid_.size() - keep;
  std::string out;
  size_t i = 0;
  while (i < n) {
    if (mid_.compare(i, kColoneqq.size(), kColoneqq) == 0) {
      out += ":=";
      i += kColoneqq.size();
    } else if (mid_.compare(i, kEqqcolon.size(), kEqqcolon) == 0) {
      out += "=:";
      i += kEqqcolon.size();
    } else {
      out += mid_[i++];
    }
  }
  mid_.erase(0, std::min(i, mid_.size()));
  return out;
}

std::string MarkdownStream::push(const std::string& text) {
  raw_ += text;
  return stage2(stage1(false), false);
}

std::string MarkdownStream::flush() { return stage2(stage1(true), true); }

std::string postprocess_markdown(const std::string& text, const MarkdownStream::ImageFn& on_image) {
  MarkdownStream s(on_image);
  std::string out = s.push(text);
  return out + s.flush();
}

std::string save_image_crops(const RefMatch& m, const RgbImage& page, const std::string& out_dir, int& counter,
                             std::vector<std::string>& written, std::vector<std::string>* skipped) {
  std::string rep;
  for (auto& b : m.boxes) {
    auto px = scale_box(b, page.width, page.height);
    RgbImage c = crop_image(page, px[0], px[1], px[2], px[3]);
    if (c.width == 0) {
      if (skipped)
        skipped->push_back(fmt::format("image box [{}, {}, {}, {}] is empty on the {}x{} page; no crop", px[0], px[1],
                                       px[2], px[3], page.width, page.height));
      continue;
    }
    std::error_code ec;
    fs::create_directories(fs::path(out_dir) / "images", ec);
    if (ec) throw Error(fmt::format("cannot create {}: {}", (fs::path(out_dir) / "images").string(), ec.message()));
    std::string rel = fmt::format("images/{}.jpg", counter++);
    write_jpeg((fs::path(out_dir) / rel).string(), c);
    written.push_back(rel);
    rep += "![](" + rel + ")\n";
  }
  return rep;
}

// ================================================================ inputs
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

// ================================================================ PDF
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

// ================================================================ one page
std::string effective_mode(const OcrOptions& o) {
  mode_spec(o.mode);  // validates
  return (o.mode == "gundam" && !o.crop) ? std::string("base") : o.mode;
}

OcrEngine load_engine(Runtime& rt, const std::string& dir, WeightStorage storage) {
  const std::string tj = (fs::path(dir) / "tokenizer.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(tj, ec)) throw Error(fmt::format("checkpoint {} has no tokenizer.json", dir));
  Tokenizer tok = Tokenizer::from_file(tj);
  OcrEngine e{load_model(rt, dir, storage), std::move(tok), -1, 0, 1, {}};
  const LmConfig& lm = e.model.cfg.lm;
  e.image_id = e.tok.token_id("<image>");
  if (e.image_id < 0) throw Error(fmt::format("{}: the tokenizer has no <image> token", tj));
  if (e.tok.vocab_size() > lm.vocab_size)
    throw Error(
        fmt::format("{}: the tokenizer has {} ids but the model's vocabulary {} (tokenizer.json and "
                    "config.json do not belong together)",
                    dir, e.tok.vocab_size(), lm.vocab_size));
  e.bos_id = static_cast<int32_t>(lm.bos_token_id);
  e.eos_id = static_cast<int32_t>(lm.eos_token_id);
  for (const char* t : {"<td>", "</td>"})
    if (int32_t id = e.tok.token_id(t); id >= 0) e.ngram_whitelist.push_back(id);
  return e;
}

namespace {
using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

PageResult ocr_image(Runtime& rt, OcrEngine& e, const RgbImage& image, const std::string& prompt, const OcrOptions& o,
                     const std::function<void(int32_t)>& on_token) {
  PageResult r;
  r.width = image.width;
  r.height = image.height;
  r.mode = effective_mode(o);
  // Seconds spent building or loading kernel programs so far: taken out of every stage's time.
  auto compiled = [&] { return rt.programs().stats().seconds; };
  const double c0 = compiled();
  auto t0 = Clock::now();
  Views v = make_views(image, r.mode, o.max_tiles);
  r.cols = v.cols;
  r.rows = v.rows;
  r.n_tiles = v.n_tiles;
  auto t1 = Clock::now();
  const double c1 = compiled();
  // The prompt first: a page that cannot fit the context fails before the encoder runs.
  r.n_image_tokens = image_token_count(r.mode, v.cols, v.rows, v.n_tiles);
  r.prompt_ids = build_prompt_ids(e.tok, prompt, r.n_image_tokens, e.bos_id, e.image_id);
  const int64_t ctx = e.model.cfg.lm.max_position_embeddings;
  const int64_t room = ctx - static_cast<int64_t>(r.prompt_ids.size());
  if (room < 1)
    throw Error(fmt::format("the prompt ({} tokens, {} of them image) fills the model's context of {} tokens",
                            r.prompt_ids.size(), r.n_image_tokens, ctx));
  Tensor emb;
  {
    Tensor g = rt.upload(v.global_view, {1, 3, v.global_size, v.global_size});
    Tensor tiles;
    if (v.n_tiles > 0) tiles = rt.upload(v.tiles, {v.n_tiles, 3, v.tile_size, v.tile_size});
    emb = vision_embeddings(rt, e.model.vision, g, v.n_tiles > 0 ? &tiles : nullptr, v.cols, v.rows);
    rt.finish();
    rt.trim();  // the encoder's freed activations are not needed by the decoder
  }
  auto t2 = Clock::now();
  const double c2 = compiled();
  if (emb.dim(0) != r.n_image_tokens)
    throw Error(fmt::format("the vision encoder gave {} image tokens, the {} layout needs {}", emb.dim(0), r.mode,
                            r.n_image_tokens));
  GenerateOptions go;
  go.max_new_tokens = r.max_new_tokens = std::min<int64_t>(o.max_new_tokens, room);
  go.ngram_size = o.ngram_size;
  go.ngram_window = o.ngram_window;
  go.ngram_whitelist = e.ngram_whitelist;
  go.eos_id = e.eos_id;
  Clock::time_point first{}, last{};
  double c_first = 0, c_last = 0;
  int64_t n = 0;
  auto t3 = Clock::now();
  const double c3 = compiled();
  r.generated = generate(rt, e.model.lm, r.prompt_ids, &emb, e.image_id, go, [&](int32_t id) {
    last = Clock::now();
    c_last = compiled();
    if (n++ == 0) {
      first = last;
      c_first = c_last;
    }
    if (on_token) on_token(id);
  });
  auto t4 = Clock::now();
  if (n == 0) {
    first = last = t4;
    c_first = c_last = compiled();
  }
  r.eos = !r.generated.empty() && r.generated.back() == e.eos_id;
  std::vector<int32_t> body(r.generated.begin(), r.generated.end() - (r.eos ? 1 : 0));
  r.text = e.tok.decode(body);
  r.t.preprocess_s = secs(t0, t1);
  r.t.vision_s = std::max(0.0, secs(t1, t2) - (c2 - c1));
  r.t.prefill_s = std::max(0.0, secs(t3, first) - (c_first - c3));
  r.t.decode_s = std::max(0.0, secs(first, last) - (c_last - c_first));
  r.t.compile_s = compiled() - c0;
  r.host_rss_bytes = host_rss_bytes();
  r.device_live_bytes = rt.memory().current;
  r.device_held_bytes = rt.memory().current + rt.memory().cached;
  return r;
}

uint64_t host_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

nlohmann::ordered_json page_json(const PageResult& r, const PageReport& rep) {
  using json = nlohmann::ordered_json;
  json boxes = json::array();
  for (auto& b : rep.boxes)
    boxes.push_back({{"label", b.label},
                     {"box", {b.px[0], b.px[1], b.px[2], b.px[3]}},
                     {"box_999", {b.grid[0], b.grid[1], b.grid[2], b.grid[3]}}});
  const int64_t g = static_cast<int64_t>(r.generated.size());
  const double tok_s = (g > 1 && r.t.decode_s > 0) ? (g - 1) / r.t.decode_s : 0.0;
  json j = {
      {"source", rep.source},
      {"page", rep.page > 0 ? json(rep.page) : json(nullptr)},
      {"width", r.width},
      {"height", r.height},
      {"mode", r.mode},
      {"grid", {r.cols, r.rows}},
      {"tiles", r.n_tiles},
      {"prompt", rep.prompt},
      {"text", r.text},
      {"markdown", rep.markdown},
      {"boxes", boxes},
      {"images", rep.images},
      {"tokens", {{"prompt", r.prompt_ids.size()}, {"image", r.n_image_tokens}, {"generated", g}}},
      {"generated_ids", r.generated},
      {"stop", r.eos ? "eos" : "max_new_tokens"},
      {"timings",
       {{"load_s", rep.load_s},
        {"preprocess_s", r.t.preprocess_s},
        {"vision_s", r.t.vision_s},
        {"prefill_s", r.t.prefill_s},
        {"decode_s", r.t.decode_s},
        {"decode_tok_s", tok_s},
        {"compile_s", r.t.compile_s}}},
      {"memory",
       {{"host_rss_bytes", r.host_rss_bytes},
        {"device_live_bytes", r.device_live_bytes},
        {"device_held_bytes", r.device_held_bytes}}},
  };
  return j;
}

}  // namespace dsocr

#include "ocr/markdown.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "ocr/draw.h"
#include "runtime/error.h"

namespace dsocr {
namespace fs = std::filesystem;

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

}  // namespace dsocr

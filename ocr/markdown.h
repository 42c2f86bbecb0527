// The official markdown post-processing, streaming, and the image crops it links.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/image.h"
#include "ocr/grounding.h"

namespace dsocr {

// The official post-processing (R1 run_dpsk_ocr_image.py), streaming: every ref/det match is
// replaced by on_image(match) when its label is `image`, and removed otherwise; then \coloneqq
// becomes := and \eqqcolon becomes =:. Text is held back only while it may still become part of a
// match or of one of those words. The result equals the batch post-processing of the whole text.
class MarkdownStream {
 public:
  using ImageFn = std::function<std::string(const RefMatch&)>;
  explicit MarkdownStream(ImageFn on_image = {}) : on_image_(std::move(on_image)) {}
  std::string push(const std::string& text);
  std::string flush();

 private:
  std::string stage1(bool final);
  std::string stage2(const std::string& in, bool final);
  ImageFn on_image_;
  std::string raw_, mid_;
};
// Batch form: push(text) + flush().
std::string postprocess_markdown(const std::string& text, const MarkdownStream::ImageFn& on_image = {});

// The official handling of an `image` match: each box, scaled to the page and clipped, is saved
// as OUT_DIR/images/K.jpg (K = counter++, OUT_DIR/images created when needed), and the match
// becomes "![](images/K.jpg)\n" per box. `written` gets "images/K.jpg" for each file; boxes empty
// after clipping are skipped and described in *skipped.
std::string save_image_crops(const RefMatch& m, const RgbImage& page, const std::string& out_dir, int& counter,
                             std::vector<std::string>& written, std::vector<std::string>* skipped = nullptr);

}  // namespace dsocr

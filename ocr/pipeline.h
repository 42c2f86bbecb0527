// The page pipeline as one library call, shared by `dsocr ocr` and any other front end (a server):
// a decoded page in, its output in the requested format out, streamed while it is generated.
//
//   image -> run_page -> ocr_image (views, encoder, prompt, generation: ocr/page.h)
//         -> TextStream (UTF-8 pieces) -> MarkdownStream (official post-processing, image crops)
//         -> events.text (text/markdown) or one JSON object (json); boxes in pixels
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/text_stream.h"
#include "ocr/grounding.h"
#include "ocr/markdown.h"
#include "ocr/page.h"

namespace dsocr {

// text: the model's output as generated (grounding tags kept); markdown: the official
// post-processing; json: one object per page (page_json).
enum class OutputFormat { text, markdown, json };
OutputFormat output_format_from_string(const std::string& s);  // Error naming the value otherwise
const char* output_format_name(OutputFormat f);

struct PageRequest {
  std::string prompt;  // holds <image> once (task_prompt or a raw prompt)
  OcrOptions opts;
  OutputFormat format = OutputFormat::markdown;
  std::string out_dir = "dsocr-out";  // where image crops go (markdown and json)
  std::string source;                 // named in the JSON and in warnings
  int page = 0;                       // 1-based PDF page, 0 for an image
  double load_s = 0;                  // the model's load time, reported in the JSON
};

// Called while the page runs; each may be empty.
struct PageEvents {
  std::function<void(const std::string&)> text;     // output as it becomes final (text, markdown)
  std::function<void(int64_t n, int32_t id)> token;  // after each generated id (n counts them, EOS too)
  std::function<void(const std::string&)> warning;  // e.g. an image region empty after clipping
};

struct PageOutput {
  PageResult result;
  std::string text;      // text/markdown: everything events.text received; json: "" (see json)
  std::string json;      // json: the page's object on one line, without a newline; else ""
  std::string markdown;  // json: the markdown post-processing of the text; else ""
  std::vector<PixelBox> boxes;      // grounding boxes in pixels of the page
  std::vector<std::string> images;  // crops written, relative to out_dir
};

// The output side of run_page, for ids that come one at a time from anywhere (generate() or a
// batch): push() each id as generated (EOS included), then finish() with the page's result.
// Text and markdown pieces reach events.text as they become final; image crops are written and
// numbered from crop_counter as the markdown reaches them.
class PageStream {
 public:
  PageStream(const OcrEngine& e, const RgbImage& image, const PageRequest& req, int& crop_counter,
             const PageEvents& events);
  PageStream(const PageStream&) = delete;
  PageStream& operator=(const PageStream&) = delete;
  void push(int32_t id);
  PageOutput finish(PageResult result);

 private:
  void emit(const std::string& s);
  std::string on_image(const RefMatch& m);

  const OcrEngine& e_;
  const RgbImage& image_;
  const PageRequest& req_;
  int& crops_;
  const PageEvents& events_;
  std::string where_;
  PageOutput out_;
  TextStream ts_;
  MarkdownStream md_;
  int64_t n_ = 0;
};

// Runs one page on a loaded engine. crop_counter numbers the image crops across pages (the
// official naming images/K.jpg); it is advanced by the crops written. Errors propagate as thrown
// by ocr_image (OutOfDeviceMemory, Error).
PageOutput run_page(Runtime& rt, OcrEngine& engine, const RgbImage& image, const PageRequest& req,
                    int& crop_counter, const PageEvents& events = {});

}  // namespace dsocr

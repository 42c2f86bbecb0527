#include "ocr/pipeline.h"

#include <fmt/format.h>

#include "model/text_stream.h"
#include "ocr/markdown.h"
#include "runtime/error.h"

namespace dsocr {

OutputFormat output_format_from_string(const std::string& s) {
  if (s == "text") return OutputFormat::text;
  if (s == "markdown") return OutputFormat::markdown;
  if (s == "json") return OutputFormat::json;
  throw Error(fmt::format("unknown output format '{}': expected text, markdown or json", s));
}

const char* output_format_name(OutputFormat f) {
  switch (f) {
    case OutputFormat::text: return "text";
    case OutputFormat::markdown: return "markdown";
    case OutputFormat::json: return "json";
  }
  return "?";
}

PageStream::PageStream(const OcrEngine& e, const RgbImage& image, const PageRequest& req, int& crop_counter,
                       const PageEvents& events)
    : e_(e),
      image_(image),
      req_(req),
      crops_(crop_counter),
      events_(events),
      where_(req.page > 0 ? fmt::format("{} page {}", req.source, req.page) : req.source),
      ts_(e.tok),
      md_([this](const RefMatch& m) { return on_image(m); }) {}

std::string PageStream::on_image(const RefMatch& m) {
  std::vector<std::string> skipped;
  std::string rep = save_image_crops(m, image_, req_.out_dir, crops_, out_.images, &skipped);
  if (events_.warning)
    for (auto& w : skipped) events_.warning(where_ + ": " + w);
  return rep;
}

void PageStream::emit(const std::string& s) {
  if (s.empty()) return;
  out_.text += s;
  if (events_.text) events_.text(s);
}

void PageStream::push(int32_t id) {
  ++n_;
  if (events_.token) events_.token(n_, id);
  if (id == e_.eos_id) return;
  if (req_.format == OutputFormat::text)
    emit(ts_.push(id));
  else if (req_.format == OutputFormat::markdown)
    emit(md_.push(ts_.push(id)));
}

PageOutput PageStream::finish(PageResult result) {
  out_.result = std::move(result);
  if (req_.format == OutputFormat::text) {
    emit(ts_.flush());
  } else if (req_.format == OutputFormat::markdown) {
    emit(md_.push(ts_.flush()));
    emit(md_.flush());
  } else {
    out_.markdown = postprocess_markdown(out_.result.text, [this](const RefMatch& m) { return on_image(m); });
  }
  out_.boxes = pixel_boxes(out_.result.text, image_.width, image_.height);
  if (req_.format == OutputFormat::json) {
    PageReport rep{req_.source, req_.page, req_.prompt, out_.markdown, out_.boxes, out_.images, req_.load_s};
    out_.json = page_json(out_.result, rep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return std::move(out_);
}

PageOutput run_page(Runtime& rt, OcrEngine& engine, const RgbImage& image, const PageRequest& req,
                    int& crop_counter, const PageEvents& events) {
  PageStream stream(engine, image, req, crop_counter, events);
  PageResult r = ocr_image(rt, engine, image, req.prompt, req.opts, [&](int32_t id) { stream.push(id); });
  return stream.finish(std::move(r));
}

}  // namespace dsocr

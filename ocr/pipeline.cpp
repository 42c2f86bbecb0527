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

PageOutput run_page(Runtime& rt, OcrEngine& engine, const RgbImage& image, const PageRequest& req,
                    int& crop_counter, const PageEvents& events) {
  PageOutput out;
  const std::string where = req.page > 0 ? fmt::format("{} page {}", req.source, req.page) : req.source;
  auto on_image = [&](const RefMatch& m) {
    std::vector<std::string> skipped;
    std::string rep = save_image_crops(m, image, req.out_dir, crop_counter, out.images, &skipped);
    if (events.warning)
      for (auto& w : skipped) events.warning(where + ": " + w);
    return rep;
  };
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    out.text += s;
    if (events.text) events.text(s);
  };
  TextStream ts(engine.tok);
  MarkdownStream md(on_image);
  int64_t n = 0;
  auto on_token = [&](int32_t id) {
    ++n;
    if (events.token) events.token(n, id);
    if (id == engine.eos_id) return;
    if (req.format == OutputFormat::text)
      emit(ts.push(id));
    else if (req.format == OutputFormat::markdown)
      emit(md.push(ts.push(id)));
  };
  out.result = ocr_image(rt, engine, image, req.prompt, req.opts, on_token);
  if (req.format == OutputFormat::text) {
    emit(ts.flush());
  } else if (req.format == OutputFormat::markdown) {
    emit(md.push(ts.flush()));
    emit(md.flush());
  } else {
    out.markdown = postprocess_markdown(out.result.text, on_image);
  }
  out.boxes = pixel_boxes(out.result.text, image.width, image.height);
  if (req.format == OutputFormat::json) {
    PageReport rep{req.source, req.page, req.prompt, out.markdown, out.boxes, out.images, req.load_s};
    out.json = page_json(out.result, rep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return out;
}

}  // namespace dsocr

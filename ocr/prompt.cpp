#include "ocr/prompt.h"

#include <fmt/format.h>

#include "runtime/error.h"

namespace dsocr {

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

}  // namespace dsocr

// Task prompts and the `plain` prompt ids (model-spec §4).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace dsocr {

// Task names: markdown, ocr, free, figure, describe, locate (model-spec §4, official prompts).
const std::vector<std::string>& ocr_tasks();
// The official prompt of a task; `ref` fills locate's <|ref|>...<|/ref|>. Throws Error for an
// unknown task, locate without ref, or ref with another task.
std::string task_prompt(const std::string& task, const std::string& ref = {});

// The `plain` template: [bos] + enc(text before "<image>") + [image_id] * n_image_tokens +
// enc(text after), no EOS. The text must hold exactly one "<image>" (Error otherwise).
std::vector<int32_t> build_prompt_ids(const Tokenizer& tok, const std::string& text, int n_image_tokens, int32_t bos_id,
                                      int32_t image_id);

}  // namespace dsocr

// Greedy generation with the official no-repeat n-gram rule (model-spec §4): prefill the prompt
// in one pass, then one token per step against the KV cache; only the chosen id crosses to the
// host each step (the banned ids, a handful, go the other way).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/decoder.h"

namespace dsocr {

struct GenerateOptions {
  int64_t max_new_tokens = 8192;
  int ngram_size = 0, ngram_window = 0;  // 0: no n-gram rule
  std::vector<int32_t> ngram_whitelist;  // never banned (<td>, </td> in the official scripts)
  int32_t eos_id = 1;
  int64_t context = 0;  // KV cache capacity; 0 = prompt + max_new_tokens
  DType kv = DType::f32;  // KV cache storage: f32 (the reference's arithmetic), f16 or bf16
};

// Ids the rule bans after `ids` (the generated ids only, as vLLM's processors see them): if
// len >= n, for each start s in [max(0, len - window), len - n] with ids[s:s+n-1] equal to the
// last n-1 ids, ids[s+n-1] is banned; whitelisted ids never are. Sorted, unique.
std::vector<int32_t> banned_ngram_tokens(const std::vector<int32_t>& ids, int n, int window,
                                         const std::vector<int32_t>& whitelist);

// Generated ids (EOS included when reached). on_token (optional) is called with each id as it is
// chosen. Throws Error when prompt + max_new_tokens exceeds the model's context or opts.context.
std::vector<int32_t> generate(Runtime& rt, const LanguageModel& lm, const std::vector<int32_t>& prompt,
                              const Tensor* image_embeds, int32_t image_token_id, const GenerateOptions& opts,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace dsocr

#include "model/generate.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/ops/argmax.h"
#include "runtime/ops/embedding.h"

namespace dsocr {

std::vector<int32_t> banned_ngram_tokens(const std::vector<int32_t>& ids, int n, int window,
                                         const std::vector<int32_t>& whitelist) {
  std::vector<int32_t> out;
  const int64_t len = static_cast<int64_t>(ids.size());
  if (n < 1 || len < n) return out;
  for (int64_t s = std::max<int64_t>(0, len - window); s <= len - n; ++s) {
    if (!std::equal(ids.begin() + s, ids.begin() + s + n - 1, ids.end() - (n - 1))) continue;
    int32_t t = ids[s + n - 1];
    if (std::find(whitelist.begin(), whitelist.end(), t) == whitelist.end()) out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int32_t> generate(Runtime& rt, const LanguageModel& lm, const std::vector<int32_t>& prompt,
                              const Tensor* image_embeds, int32_t image_token_id, const GenerateOptions& opts,
                              const std::function<void(int32_t)>& on_token) {
  const LmConfig& c = lm.cfg;
  const int64_t L = static_cast<int64_t>(prompt.size());
  if (opts.max_new_tokens < 1)
    throw Error(fmt::format("generate: max_new_tokens {} must be positive", opts.max_new_tokens));
  const int64_t need = L + opts.max_new_tokens;
  const int64_t limit =
      opts.context > 0 ? std::min(opts.context, c.max_position_embeddings) : c.max_position_embeddings;
  if (need > limit)
    throw Error(fmt::format(
        "generate: the prompt ({} tokens) plus max_new_tokens ({}) is {} tokens, over the context limit of {} tokens",
        L, opts.max_new_tokens, need, limit));
  KvCache cache = make_kv_cache(rt, c, opts.context > 0 ? limit : need, opts.kv);

  Tensor x = lm_embed(rt, lm, prompt, image_embeds, image_token_id);
  Tensor logits = lm_forward(rt, lm, x, cache, /*last_only=*/true);

  // Banned ids go to the device each step: at most `window` of them.
  const int max_banned = std::max(opts.ngram_window, 1);
  Tensor banned_t = rt.empty({max_banned}, DType::i32, "banned ids");
  Tensor next = rt.empty({1}, DType::i32, "next id");
  Tensor emb = rt.empty({1, c.hidden_size}, DType::f32, "next embedding");
  std::vector<int32_t> out;
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    std::vector<int32_t> banned;
    if (opts.ngram_size > 0)
      banned = banned_ngram_tokens(out, opts.ngram_size, opts.ngram_window, opts.ngram_whitelist);
    if (static_cast<int>(banned.size()) > max_banned) banned.resize(max_banned);  // cannot happen: one per start
    if (!banned.empty()) rt.write(banned_t, banned.data(), banned.size() * sizeof(int32_t));
    ops::argmax(rt, logits, banned.empty() ? nullptr : &banned_t, static_cast<int>(banned.size()), next);
    int32_t tok = 0;
    rt.read(next, &tok, sizeof(tok));
    out.push_back(tok);
    if (on_token) on_token(tok);
    if (tok == opts.eos_id || step + 1 == opts.max_new_tokens) break;
    ops::embedding(rt, lm.embed, next, emb);
    logits = lm_forward(rt, lm, emb, cache, true);
  }
  return out;
}

}  // namespace dsocr

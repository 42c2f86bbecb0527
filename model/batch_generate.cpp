#include "model/batch_generate.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/ops/argmax.h"
#include "runtime/ops/embedding.h"

namespace dsocr {

BatchGenerator::BatchGenerator(Runtime& rt, const LanguageModel& lm, int slots, int64_t capacity, DType kv)
    : rt_(rt), lm_(lm), capacity_(capacity), kv_(kv) {
  if (slots < 1) throw Error(fmt::format("batch generation: {} slots, at least 1 needed", slots));
  if (capacity < 2)
    throw Error(fmt::format("batch generation: capacity {} tokens per sequence is too small", capacity));
  cache_ = make_kv_cache(rt, lm.cfg, slots * capacity, kv);
  slot_seq_.assign(static_cast<size_t>(slots), -1);
  seqs_.resize(static_cast<size_t>(slots));
}

int BatchGenerator::active() const {
  return static_cast<int>(std::count_if(slot_seq_.begin(), slot_seq_.end(), [](int64_t s) { return s >= 0; }));
}

bool BatchGenerator::finished(const Seq& s) const {
  return s.out.back() == s.opts.eos_id || static_cast<int64_t>(s.out.size()) == s.opts.max_new_tokens;
}

int64_t BatchGenerator::add(const std::vector<int32_t>& prompt, const Tensor* image_embeds, int32_t image_token_id,
                            const GenerateOptions& opts, const TokenFn& on_token) {
  const LmConfig& c = lm_.cfg;
  auto it = std::find(slot_seq_.begin(), slot_seq_.end(), -1);
  if (it == slot_seq_.end()) throw Error(fmt::format("batch generation: all {} slots are busy", slots()));
  if (opts.max_new_tokens < 1)
    throw Error(fmt::format("batch generation: max_new_tokens {} must be positive", opts.max_new_tokens));
  const int64_t L = static_cast<int64_t>(prompt.size());
  const int64_t need = L + opts.max_new_tokens, limit = std::min(capacity_, c.max_position_embeddings);
  if (need > limit)
    throw Error(fmt::format(
        "batch generation: the prompt ({} tokens) plus max_new_tokens ({}) is {} tokens, over the limit of {} tokens "
        "per sequence",
        L, opts.max_new_tokens, need, limit));
  const int64_t slot = it - slot_seq_.begin();

  // The prompt alone, as generate() runs it, into a cache of its own; its rows then go to the slot.
  KvCache tmp = make_kv_cache(rt_, c, L, kv_);
  Tensor x = lm_embed(rt_, lm_, prompt, image_embeds, image_token_id);
  Tensor logits = lm_forward(rt_, lm_, x, tmp, /*last_only=*/true);
  const size_t row_bytes = dtype_bytes(kv_, 2 * c.num_key_value_heads * c.head_dim());
  for (size_t i = 0; i < cache_.kv.size(); ++i)
    rt_.copy(tmp.kv[i], cache_.kv[i], static_cast<size_t>(L) * row_bytes, 0,
             static_cast<size_t>(slot * capacity_) * row_bytes);
  Tensor next = rt_.empty({1}, DType::i32, "next id");
  ops::argmax(rt_, logits, nullptr, 0, next);  // nothing generated yet: nothing banned
  int32_t tok = 0;
  rt_.read(next, &tok, sizeof(tok));

  Seq s;
  s.id = next_id_++;
  s.opts = opts;
  s.out.push_back(tok);
  s.length = L;
  const bool last = finished(s);
  if (!last) {
    seqs_[slot] = std::move(s);
    slot_seq_[slot] = seqs_[slot].id;
  }
  if (on_token) on_token(next_id_ - 1, tok, last);
  return next_id_ - 1;
}

void BatchGenerator::step(const TokenFn& on_token) {
  std::vector<int64_t> slots;
  for (size_t i = 0; i < slot_seq_.size(); ++i)
    if (slot_seq_[i] >= 0) slots.push_back(static_cast<int64_t>(i));
  const int64_t B = static_cast<int64_t>(slots.size());
  if (B == 0) return;
  const LmConfig& c = lm_.cfg;

  std::vector<int32_t> ids(static_cast<size_t>(B));
  DecodeBatch batch;
  for (int64_t b = 0; b < B; ++b) {
    const Seq& s = seqs_[slots[b]];
    ids[b] = s.out.back();
    batch.first_row.push_back(slots[b] * capacity_);
    batch.length.push_back(s.length);
  }
  Tensor idt = rt_.upload(ids.data(), {B}, DType::i32, "next ids");
  Tensor x = rt_.empty({B, c.hidden_size}, DType::f32, "next embeddings");
  ops::embedding(rt_, lm_.embed, idt, x);
  Tensor logits = lm_decode_batch(rt_, lm_, x, cache_.kv, batch);

  // Each row's n-gram ban, as generate() computes it from the ids generated so far.
  std::vector<std::vector<int32_t>> bans(static_cast<size_t>(B));
  size_t nb = 0;
  for (int64_t b = 0; b < B; ++b) {
    const Seq& s = seqs_[slots[b]];
    if (s.opts.ngram_size > 0)
      bans[b] = banned_ngram_tokens(s.out, s.opts.ngram_size, s.opts.ngram_window, s.opts.ngram_whitelist);
    nb = std::max(nb, bans[b].size());
  }
  Tensor next = rt_.empty({B}, DType::i32, "next ids");
  if (nb > 0) {
    std::vector<int32_t> flat(static_cast<size_t>(B) * nb, -1);
    for (int64_t b = 0; b < B; ++b) std::copy(bans[b].begin(), bans[b].end(), flat.begin() + b * nb);
    Tensor bt = rt_.upload(flat.data(), {B, static_cast<int64_t>(nb)}, DType::i32, "banned ids");
    ops::argmax(rt_, logits, &bt, static_cast<int>(nb), next, /*per_row=*/true);
  } else {
    ops::argmax(rt_, logits, nullptr, 0, next);
  }
  std::vector<int32_t> toks(static_cast<size_t>(B));
  rt_.read(next, toks.data(), toks.size() * sizeof(int32_t));

  for (int64_t b = 0; b < B; ++b) {
    Seq& s = seqs_[slots[b]];
    s.length += 1;  // the token fed this step is now in the cache
    s.out.push_back(toks[b]);
    const bool last = finished(s);
    const int64_t id = s.id;
    if (last) slot_seq_[slots[b]] = -1;
    if (on_token) on_token(id, toks[b], last);
  }
}

void BatchGenerator::cancel(int64_t seq) {
  for (auto& s : slot_seq_)
    if (s == seq) s = -1;
}

std::vector<std::vector<int32_t>> generate_batch(Runtime& rt, const LanguageModel& lm,
                                                 const std::vector<BatchPrompt>& prompts, int slots, int64_t capacity,
                                                 DType kv) {
  if (capacity <= 0)
    for (const BatchPrompt& p : prompts)
      capacity = std::max<int64_t>(capacity, static_cast<int64_t>(p.prompt.size()) + p.opts.max_new_tokens);
  std::vector<std::vector<int32_t>> out(prompts.size());
  if (prompts.empty()) return out;
  BatchGenerator gen(rt, lm, slots, capacity, kv);
  std::vector<int64_t> index;  // sequence id -> prompt
  auto on_token = [&](int64_t seq, int32_t tok, bool) { out[index[seq]].push_back(tok); };
  size_t next = 0;
  while (next < prompts.size() || gen.active() > 0) {
    while (next < prompts.size() && gen.free_slots() > 0) {
      const BatchPrompt& p = prompts[next];
      index.push_back(static_cast<int64_t>(next));
      gen.add(p.prompt, p.image_embeds, p.image_token_id, p.opts, on_token);
      ++next;
    }
    gen.step(on_token);
  }
  return out;
}

}  // namespace dsocr

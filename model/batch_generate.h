// Greedy generation for many sequences at once (continuous batching): each sequence is prefilled
// alone into a free slot of one shared KV cache, then every step decodes one token for all active
// sequences together (model/decoder.h lm_decode_batch); a sequence that ends (EOS or its
// max_new_tokens) frees its slot at once, for the next one waiting. Each sequence's ids are those
// generate() gives it alone, bit for bit: the same kernels run on each of its rows in the same
// order. The caller owns the queue: add() while free_slots() > 0, step() while active() > 0.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/decoder.h"
#include "model/generate.h"

namespace dsocr {

class BatchGenerator {
 public:
  // seq: the id add() returned; last: the sequence ended with this token (its slot is free again).
  using TokenFn = std::function<void(int64_t seq, int32_t token, bool last)>;

  // slots sequences of at most `capacity` tokens each (prompt + generated), KV cache storage kv.
  // Allocates the whole cache now: OutOfDeviceMemory (saying how much is needed and left) when
  // slots * capacity tokens do not fit.
  BatchGenerator(Runtime& rt, const LanguageModel& lm, int slots, int64_t capacity, DType kv = DType::f32);

  int slots() const { return static_cast<int>(slot_seq_.size()); }
  int64_t capacity() const { return capacity_; }
  int active() const;
  int free_slots() const { return slots() - active(); }

  // Prefills a sequence into a free slot and chooses its first token (reported through on_token
  // before add returns; a sequence whose first token ends it never holds the slot). opts.context
  // is ignored (the slot's capacity is the limit); opts.kv too (the generator's). Throws Error
  // when no slot is free, or when the prompt plus max_new_tokens exceeds the capacity or the
  // model's context.
  int64_t add(const std::vector<int32_t>& prompt, const Tensor* image_embeds, int32_t image_token_id,
              const GenerateOptions& opts, const TokenFn& on_token);

  // One token for every active sequence (nothing when none is active).
  void step(const TokenFn& on_token);

  // Ends a sequence now (a cancelled request); its slot is free. Unknown ids are ignored.
  void cancel(int64_t seq);

 private:
  struct Seq {
    int64_t id = -1;
    GenerateOptions opts;
    std::vector<int32_t> out;
    int64_t length = 0;  // tokens in the cache
  };
  bool finished(const Seq& s) const;

  Runtime& rt_;
  const LanguageModel& lm_;
  int64_t capacity_;
  DType kv_;
  KvCache cache_;                  // slots * capacity rows per layer
  std::vector<int64_t> slot_seq_;  // the id of the sequence in each slot, -1 when free
  std::vector<Seq> seqs_;          // per slot
  int64_t next_id_ = 0;
};

// Runs every prompt through a BatchGenerator of `slots` slots (continuous batching, in order of
// arrival) and returns each one's generated ids, as generate() would return them one by one.
// capacity 0: the longest prompt + max_new_tokens of all.
struct BatchPrompt {
  std::vector<int32_t> prompt;
  const Tensor* image_embeds = nullptr;
  int32_t image_token_id = -1;
  GenerateOptions opts;
};
std::vector<std::vector<int32_t>> generate_batch(Runtime& rt, const LanguageModel& lm,
                                                 const std::vector<BatchPrompt>& prompts, int slots,
                                                 int64_t capacity = 0, DType kv = DType::f32);

}  // namespace dsocr

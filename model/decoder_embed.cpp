// lm_embed (model/decoder.h): token embeddings with the image embeddings in the <image> slots.
#include <fmt/format.h>

#include "model/decoder.h"
#include "runtime/ops/embedding.h"

namespace dsocr {

Tensor lm_embed(Runtime& rt, const LanguageModel& lm, const std::vector<int32_t>& ids, const Tensor* image_embeds,
                int32_t image_token_id) {
  const int64_t V = lm.cfg.vocab_size, D = lm.cfg.hidden_size, T = static_cast<int64_t>(ids.size());
  if (T == 0) throw Error("language model: the prompt has no tokens");
  int64_t slots = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= V)
      throw Error(
          fmt::format("language model: token id {} at position {} is outside the vocabulary [0, {})", ids[i], i, V));
    slots += ids[i] == image_token_id;
  }
  const int64_t n_img = image_embeds ? image_embeds->dim(0) : 0;
  if (image_embeds && (image_embeds->rank() != 2 || image_embeds->dim(1) != D))
    throw Error(
        fmt::format("language model: image embeddings must be [n,{}], got {}", D, shape_str(image_embeds->shape)));
  if (n_img > 0 && slots != n_img)
    throw Error(fmt::format("language model: the prompt has {} image slots (id {}) for {} image embeddings", slots,
                            image_token_id, n_img));
  Tensor idt = rt.upload(ids.data(), {T}, DType::i32, "input ids");
  Tensor x = rt.empty({T, D}, DType::f32, "embeddings");
  ops::embedding(rt, lm.embed, idt, x);
  if (n_img == 0) return x;
  // Slots in sequence order take the image embeddings in order, one contiguous run at a time.
  const size_t row = static_cast<size_t>(D) * 4;
  int64_t next = 0;
  for (int64_t i = 0; i < T;) {
    if (ids[i] != image_token_id) {
      ++i;
      continue;
    }
    int64_t j = i;
    while (j < T && ids[j] == image_token_id) ++j;
    rt.copy(*image_embeds, x, (j - i) * row, next * row, i * row);
    next += j - i;
    i = j;
  }
  return x;
}

}  // namespace dsocr

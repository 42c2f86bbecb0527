// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (DeepSeek-V3 family), matching
// the `tokenizers` library token for token:
//   encode: added tokens split out first, as tokenizers' AddedVocabulary does (the non-normalized
//     ones over the whole text, then the normalized ones over what is left; leftmost-longest
//     matching; `single_word` needs a non-word character or the text's edge on both sides;
//     `lstrip`/`rstrip` swallow the Unicode whitespace next to the token), then the
//     pre-tokenizer's Split regexes (PCRE2 with UTF and Unicode properties), ByteLevel, BPE merges
//     by rank (id pairs, lowest rank then leftmost first), vocabulary lookup.
//   decode: the ByteLevel decoder (each token's characters mapped back to bytes, a token holding
//     any other character kept as its own UTF-8), invalid UTF-8 replaced by U+FFFD as Rust's
//     String::from_utf8_lossy does; without a decoder the token strings joined by spaces.
// Accepted components (anything else is refused with NotImplemented naming it):
//   normalizer: null, or a Sequence that does nothing (empty, or of empty Sequences); the added
//     tokens' `normalized` flag then only decides which of the two passes matches them.
//   pre_tokenizer: Split (Regex or String pattern, behavior Isolated, not inverted) any number of
//     times, then ByteLevel (use_regex false, add_prefix_space false), or ByteLevel alone.
//   model: BPE without byte_fallback, dropout, continuing_subword_prefix or end_of_word_suffix;
//     unk_token / fuse_unk / ignore_merges as in tokenizers.
//   post_processor: null, ByteLevel (its flags change offsets only), TemplateProcessing, or a
//     Sequence of these: encode() is add_special_tokens=False, so none of them changes the ids.
//   decoder: null or ByteLevel (its flags do not change decoding).
// Ids are taken from the file (tokenizers re-derives an added token's id and only warns when it
// differs; the files we read agree); an added token whose content the vocabulary gives another id
// is refused. A loaded Tokenizer is immutable: encode/decode may run on several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsocr {

class Tokenizer {
 public:
  // Reads tokenizer.json; throws Error naming the file and what is missing or malformed, and
  // NotImplemented naming a component that is not supported.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(const std::string& text, const std::string& origin);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Ids of `text` without BOS (add_special_tokens=False). Invalid UTF-8 is first replaced by
  // U+FFFD per maximal invalid subsequence, as Python's bytes.decode(errors="replace").
  std::vector<int32_t> encode(const std::string& text) const;
  // tokenizers' decode(ids, skip_special_tokens). Ids without a token are dropped. The default
  // keeps special tokens (the OCR output keeps <|ref|>, <|det|>, ... for its post-processing).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  // The bytes decode() appends for `id` with the ByteLevel decoder, before invalid UTF-8 is
  // replaced ("" for ids without a token); streaming decoders concatenate these.
  std::string token_bytes(int32_t id) const;
  std::string token_text(int32_t id) const;  // the token's raw string ("" for unknown ids)

  // Id of a token or added token (e.g. "<image>"); -1 when absent.
  int32_t token_id(const std::string& token) const;
  int32_t vocab_size() const;  // 1 + the largest id
  bool is_special(int32_t id) const;

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Replaces invalid UTF-8 with U+FFFD (one per maximal invalid subsequence).
std::string sanitize_utf8(const std::string& s);

}  // namespace dsocr

// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (DeepSeek-V3 family), matching
// the `tokenizers` library: added tokens split out first (non-normalized ones, then normalized
// ones, leftmost-longest), the pre-tokenizer's Split regexes (PCRE2 with UTF and Unicode
// properties) then ByteLevel, BPE merges by rank, vocabulary lookup. Decoding is the ByteLevel
// inverse (special tokens kept), invalid UTF-8 replaced by U+FFFD.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace dsocr {

class Tokenizer {
 public:
  // Reads tokenizer.json; throws Error naming the file and what is missing or unsupported.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(const std::string& text, const std::string& origin);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Ids of `text` without BOS (add_special_tokens=False). Invalid UTF-8 is first replaced by
  // U+FFFD per maximal invalid subsequence, as Python's bytes.decode(errors="replace").
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
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

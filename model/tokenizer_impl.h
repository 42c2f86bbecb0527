// Internals of model/tokenizer.h shared by its source files (not part of the public API):
//   tokenizer_text.cpp  UTF-8 helpers, GPT-2's byte <-> character map, Unicode classes, the
//                       PCRE2 Split regex
//   tokenizer_json.cpp  reading tokenizer.json into Tokenizer::Impl (components checked, vocab,
//                       merges, added tokens)
//   bpe.cpp             the BPE merges over one pre-tokenized piece
//   tokenizer.cpp       added-token matching, encode, decode and the lookups
#pragma once
#include <pcre2.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/tokenizer.h"

namespace dsocr {
namespace tokenizer_detail {

// Appends code point cp as UTF-8.
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Decodes one code point of valid UTF-8 at s[i]; returns its length.
inline size_t next_cp(const std::string& s, size_t i, uint32_t& cp) {
  unsigned char c = s[i];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if ((c >> 5) == 6) {
    cp = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f);
    return 2;
  }
  if ((c >> 4) == 14) {
    cp = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f);
    return 3;
  }
  cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f);
  return 4;
}

// The code point that ends at s[end) (valid UTF-8, end > 0).
inline uint32_t prev_cp(const std::string& s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xc0) == 0x80) --b;
  uint32_t cp;
  next_cp(s, b, cp);
  return cp;
}

// GPT-2's bytes_to_unicode: byte b <-> code point to_cp[b] (all below U+0144).
struct ByteMap {
  static constexpr uint32_t kCps = 0x144;
  uint32_t to_cp[256];
  int16_t to_byte[kCps];      // -1: not a byte-level character
  std::string byte_str[256];  // UTF-8 of to_cp
  ByteMap();
  // The token's bytes when every character is a byte-level one; otherwise its own UTF-8.
  std::string decode(const std::string& tok) const;
};
const ByteMap& byte_map();  // the one instance

// Unicode White_Space (Rust regex's `\s`, which tokenizers' lstrip/rstrip use).
bool is_white_space(uint32_t cp);
// Rust regex's Unicode `\w` (UTS #18 annex C), which tokenizers' single_word uses.
bool is_word_char(uint32_t cp);

// A pre-tokenizer Split pattern (a PCRE2 regex with UTF and Unicode properties, or a literal).
struct Regex {
  pcre2_code* code = nullptr;
  Regex(const std::string& pattern, bool literal, const std::string& origin);  // throws Error naming origin
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Isolated split: matches and the gaps between them, in order, empty pieces dropped. Match data
  // per call, so that one Tokenizer may encode on several threads.
  void split(const std::string& s, std::vector<std::string>& out) const;
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special, normalized, lstrip, rstrip, single_word;
};

// Byte trie of added-token contents: leftmost-longest matching as tokenizers' Aho-Corasick
// automaton (MatchKind::LeftmostLongest) finds them.
struct Trie {
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> kids;
    int32_t token = -1;  // index into Impl::added
  };
  std::vector<Node> nodes{1};
  bool first[256] = {};
  bool empty() const { return nodes.size() == 1; }
  void insert(const std::string& s, int32_t token);  // the first of equal contents wins
  // Longest token starting at s[pos]: its index and length, or -1.
  int32_t longest(const std::string& s, size_t pos, size_t& len) const;
};

// A piece of the text being encoded: a byte range still to be tokenized, or an added token.
struct Piece {
  size_t begin, end;
  int32_t id;  // -1: text
};

// (left id, right id) -> the key of their merge.
inline uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
}

}  // namespace tokenizer_detail

struct Tokenizer::Impl {
  using AddedToken = tokenizer_detail::AddedToken;
  using Trie = tokenizer_detail::Trie;
  using Piece = tokenizer_detail::Piece;
  using Regex = tokenizer_detail::Regex;

  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;  // added tokens over the vocabulary
  std::vector<bool> has_token, special;  // per id
  std::unordered_set<std::string> special_contents;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // merge_key(left, right) -> (rank, merged id)
  int32_t byte_id[256];                                              // vocabulary id of each byte's character
  int32_t unk_id = -1;
  bool fuse_unk = false, ignore_merges = false;
  std::vector<AddedToken> added;  // file order
  std::unordered_map<std::string, int32_t> added_id;
  Trie trie_raw, trie_normalized;  // added tokens with normalized false / true
  std::vector<std::unique_ptr<Regex>> splits;
  bool byte_level_decoder = false;  // else tokens joined with " "

  // Reading tokenizer.json (tokenizer_json.cpp), in this order; json::exception passes through.
  // The components: model options, normalizer, pre-tokenizer (fills splits), post-processor, decoder.
  void read_components(const nlohmann::json& j, const std::string& origin);
  // model.vocab, unk_token, merges and the byte ids; max_id raised to the largest vocabulary id.
  void read_model(const nlohmann::json& model, const std::string& origin, int32_t& max_id);
  // added_tokens (file order; empty and repeated contents skipped); max_id raised to theirs.
  void read_added_tokens(const nlohmann::json& j, const std::string& origin, int32_t& max_id);
  // The added-token tries and the per-id tables over ids [0, max_id].
  void build_tables(int32_t max_id);

  // Added tokens of `trie` in text[begin, end) (tokenizer.cpp).
  void find_added(const std::string& text, const Trie& trie, size_t begin, size_t end, std::vector<Piece>& out) const;
  // BPE of one pre-tokenized piece, ids appended (bpe.cpp).
  void bpe(const std::string& piece, std::vector<int32_t>& out) const;
  // Split regexes, then bpe() on each piece (bpe.cpp).
  void encode_text(const std::string& text, std::vector<int32_t>& out) const;
};

}  // namespace dsocr

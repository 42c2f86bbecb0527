// Tokenizer (model/tokenizer.h): added-token matching, encode, decode and the id lookups. Reading
// tokenizer.json is in tokenizer_json.cpp, BPE in bpe.cpp, the text helpers in tokenizer_text.cpp.
#include "model/tokenizer.h"

#include <algorithm>

#include "model/tokenizer_impl.h"

namespace dsocr {
namespace tokenizer_detail {

void Trie::insert(const std::string& s, int32_t token) {
  int32_t n = 0;
  for (unsigned char c : s) {
    int32_t next = -1;
    for (auto& [k, v] : nodes[n].kids)
      if (k == c) next = v;
    if (next < 0) {
      next = static_cast<int32_t>(nodes.size());
      nodes[n].kids.emplace_back(c, next);
      nodes.emplace_back();
    }
    n = next;
  }
  if (nodes[n].token < 0) nodes[n].token = token;  // the first of equal contents wins
  first[static_cast<unsigned char>(s[0])] = true;
}

int32_t Trie::longest(const std::string& s, size_t pos, size_t& len) const {
  int32_t best = -1, n = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    int32_t next = -1;
    for (auto& [k, v] : nodes[n].kids)
      if (k == static_cast<unsigned char>(s[i])) next = v;
    if (next < 0) break;
    n = next;
    if (nodes[n].token >= 0) best = nodes[n].token, len = i + 1 - pos;
  }
  return best;
}

}  // namespace tokenizer_detail

using tokenizer_detail::byte_map;
using tokenizer_detail::is_white_space;
using tokenizer_detail::is_word_char;
using tokenizer_detail::next_cp;
using tokenizer_detail::Piece;
using tokenizer_detail::prev_cp;

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

// tokenizers' AddedVocabulary::find_matches over text[begin, end): leftmost-longest matches (the
// scan goes on after a match's end, even a discarded one), then single_word, lstrip and rstrip.
void Tokenizer::Impl::find_added(const std::string& text, const Trie& trie, size_t begin, size_t end,
                                 std::vector<Piece>& out) const {
  if (trie.empty()) {
    out.push_back({begin, end, -1});
    return;
  }
  const std::string s = text.substr(begin, end - begin);  // the piece is the "sentence" for the edges
  std::vector<std::pair<size_t, size_t>> matches;         // (start, token index), length from the token
  std::vector<size_t> lens;
  for (size_t pos = 0; pos < s.size();) {
    size_t len = 0;
    int32_t k = trie.first[static_cast<unsigned char>(s[pos])] ? trie.longest(s, pos, len) : -1;
    if (k < 0) {
      ++pos;
      continue;
    }
    matches.emplace_back(pos, k);
    lens.push_back(len);
    pos += len;
  }
  size_t start_offset = 0;
  for (size_t i = 0; i < matches.size(); ++i) {
    size_t start = matches[i].first, stop = start + lens[i];
    const AddedToken& a = added[matches[i].second];
    if (a.single_word) {
      bool start_space = start == 0 || !is_word_char(prev_cp(s, start));
      uint32_t cp = 0;
      bool stop_space = stop == s.size() || (next_cp(s, stop, cp), !is_word_char(cp));
      if (!start_space || !stop_space) continue;
    }
    if (a.lstrip) {
      size_t b = start;
      while (b > 0) {
        size_t q = b - 1;
        while (q > 0 && (static_cast<unsigned char>(s[q]) & 0xc0) == 0x80) --q;
        uint32_t cp;
        next_cp(s, q, cp);
        if (!is_white_space(cp)) break;
        b = q;
      }
      start = std::max(b, start_offset);
    }
    if (a.rstrip) {
      while (stop < s.size()) {
        uint32_t cp;
        size_t n = next_cp(s, stop, cp);
        if (!is_white_space(cp)) break;
        stop += n;
      }
    }
    if (start_offset < start) out.push_back({begin + start_offset, begin + start, -1});
    out.push_back({begin + start, begin + stop, a.id});
    start_offset = stop;
  }
  if (start_offset != s.size()) out.push_back({begin + start_offset, end, -1});
}

std::vector<int32_t> Tokenizer::encode(const std::string& raw) const {
  const Impl& m = *impl_;
  std::string text = sanitize_utf8(raw);
  // pass 1: non-normalized added tokens over the whole text; pass 2: normalized ones over what is left
  std::vector<Piece> pass1, pieces;
  m.find_added(text, m.trie_raw, 0, text.size(), pass1);
  for (auto& p : pass1) {
    if (p.id >= 0)
      pieces.push_back(p);
    else
      m.find_added(text, m.trie_normalized, p.begin, p.end, pieces);
  }
  std::vector<int32_t> ids;
  for (auto& p : pieces) {
    if (p.id >= 0)
      ids.push_back(p.id);
    else if (p.end > p.begin)
      m.encode_text(text.substr(p.begin, p.end - p.begin), ids);
  }
  return ids;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(impl_->id_to_token.size()) || !impl_->has_token[id]) return {};
  return byte_map().decode(impl_->id_to_token[id]);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int32_t>(m.id_to_token.size()) || !m.has_token[id]) continue;
    const std::string& tok = m.id_to_token[id];
    if (skip_special_tokens && m.special_contents.count(tok)) continue;  // tokenizers checks the content
    if (m.byte_level_decoder) {
      bytes += byte_map().decode(tok);
    } else {
      if (!first) bytes += ' ';
      bytes += tok;
    }
    first = false;
  }
  return sanitize_utf8(bytes);
}

std::string Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(impl_->id_to_token.size())) return {};
  return impl_->id_to_token[id];
}

int32_t Tokenizer::token_id(const std::string& token) const {
  if (auto it = impl_->added_id.find(token); it != impl_->added_id.end()) return it->second;
  auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(impl_->special.size()) && impl_->special[id];
}

}  // namespace dsocr

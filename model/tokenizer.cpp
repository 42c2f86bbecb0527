#include "model/tokenizer.h"

#include <fmt/format.h>
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "runtime/error.h"

namespace dsocr {
namespace {

using json = nlohmann::json;

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) out += static_cast<char>(cp);
  else if (cp < 0x800) {
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
size_t next_cp(const std::string& s, size_t i, uint32_t& cp) {
  unsigned char c = s[i];
  if (c < 0x80) { cp = c; return 1; }
  if ((c >> 5) == 6) { cp = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f); return 2; }
  if ((c >> 4) == 14) { cp = ((c & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f); return 3; }
  cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) | ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f);
  return 4;
}

// GPT-2's bytes_to_unicode.
struct ByteMap {
  uint32_t to_cp[256];
  std::unordered_map<uint32_t, uint8_t> to_byte;
  std::string byte_str[256];  // UTF-8 of to_cp
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = keep ? b : 256 + n++;
      to_byte[to_cp[b]] = static_cast<uint8_t>(b);
      append_utf8(byte_str[b], to_cp[b]);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

struct Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* md = nullptr;
  Regex(const std::string& pattern, const std::string& origin) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                         &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw Error(fmt::format("{}: pre-tokenizer regex does not compile at offset {}: {}", origin, off,
                              reinterpret_cast<char*>(msg)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; errors ignored
    md = pcre2_match_data_create_from_pattern(code, nullptr);
  }
  ~Regex() {
    pcre2_match_data_free(md);
    pcre2_code_free(code);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Isolated split: matches and the gaps between them, in order, empty pieces dropped.
  void split(const std::string& s, std::vector<std::string>& out) const {
    size_t pos = 0, last = 0;
    while (pos <= s.size()) {
      int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos,
                           PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step one code point
        uint32_t cp;
        pos = b < s.size() ? b + next_cp(s, b, cp) : s.size() + 1;
        continue;
      }
      if (b > last) out.push_back(s.substr(last, b - last));
      out.push_back(s.substr(b, e - b));
      last = pos = e;
    }
    if (last < s.size()) out.push_back(s.substr(last));
  }
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special, normalized;
};

}  // namespace

std::string sanitize_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, n = s.size();
  auto cont = [&](size_t k) { return k < n && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80; };
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // expected length and the valid range of the second byte (Unicode Table 3-7)
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) { len = 3; lo = 0xa0; }
    else if (c >= 0xe1 && c <= 0xec) len = 3;
    else if (c == 0xed) { len = 3; hi = 0x9f; }
    else if (c >= 0xee && c <= 0xef) len = 3;
    else if (c == 0xf0) { len = 4; lo = 0x90; }
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else if (c == 0xf4) { len = 4; hi = 0x8f; }
    if (len == 0) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    size_t k = 1;
    while (k < len) {
      if (i + k >= n) break;
      unsigned char b = s[i + k];
      bool ok = k == 1 ? (b >= lo && b <= hi) : cont(i + k);
      if (!ok) break;
      ++k;
    }
    if (k == len) out.append(s, i, len);
    else out += "\xef\xbf\xbd";  // maximal subpart replaced once
    i += k;
  }
  return out;
}

struct Tokenizer::Impl {
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;
  std::unordered_map<std::string, int32_t> merge_rank;  // "a b" -> rank
  std::vector<AddedToken> added;                        // sorted by length desc within pass
  std::vector<std::unique_ptr<Regex>> splits;
  bool ignore_merges = false;
  std::vector<bool> special;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  void bpe(const std::string& word, std::vector<int32_t>& out) const;
  void encode_text(const std::string& text, std::vector<int32_t>& out) const;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(fmt::format("tokenizer file {} is missing or unreadable (the checkpoint folder must contain "
                            "tokenizer.json)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

Tokenizer Tokenizer::from_json(const std::string& text, const std::string& origin) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: not a JSON object", origin));
  Tokenizer t;
  Impl& m = *t.impl_;
  if (!j.contains("model") || !j["model"].is_object()) throw Error(fmt::format("{}: no \"model\" object", origin));
  const json& model = j["model"];
  if (model.value("type", std::string("BPE")) != "BPE")
    throw NotImplemented(fmt::format("{}: tokenizer model type {} is not supported (BPE only)", origin, model["type"].dump()));
  if (model.value("byte_fallback", false))
    throw NotImplemented(fmt::format("{}: BPE byte_fallback is not supported", origin));
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw Error(fmt::format("{}: model.vocab missing", origin));
  m.ignore_merges = model.value("ignore_merges", false);
  int32_t max_id = -1;
  for (auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
      throw Error(fmt::format("{}: vocab entry {} has a bad id", origin, tok));
    m.vocab[tok] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  if (model.contains("merges") && model["merges"].is_array()) {
    int32_t rank = 0;
    for (auto& mg : model["merges"]) {
      std::string key;
      if (mg.is_string()) key = mg.get<std::string>();
      else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string())
        key = mg[0].get<std::string>() + " " + mg[1].get<std::string>();
      else throw Error(fmt::format("{}: merge #{} is malformed", origin, rank));
      m.merge_rank.emplace(key, rank++);
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (auto& a : j["added_tokens"]) {
      if (!a.contains("id") || !a.contains("content")) throw Error(fmt::format("{}: added token without id/content", origin));
      if (a.value("single_word", false) || a.value("lstrip", false) || a.value("rstrip", false))
        throw NotImplemented(fmt::format("{}: added token {} uses single_word/lstrip/rstrip, not supported", origin,
                                         a["content"].dump()));
      AddedToken at{a["content"].get<std::string>(), a["id"].get<int32_t>(), a.value("special", false),
                    a.value("normalized", false)};
      m.added.push_back(at);
      max_id = std::max(max_id, at.id);
    }
  }
  std::stable_sort(m.added.begin(), m.added.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  m.id_to_token.assign(max_id + 1, std::string());
  m.special.assign(max_id + 1, false);
  for (auto& [tok, id] : m.vocab) m.id_to_token[id] = tok;
  for (auto& a : m.added) {
    m.id_to_token[a.id] = a.content;
    m.special[a.id] = a.special;
  }
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    throw NotImplemented(fmt::format("{}: tokenizer normalizers are not supported (DeepSeek's tokenizer has none)", origin));
  // pre_tokenizer: Sequence of Split(Regex, Isolated) then ByteLevel(use_regex false), or a lone ByteLevel.
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  std::vector<json> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence") steps = pre["pretokenizers"].get<std::vector<json>>();
  else if (pre.is_object()) steps.push_back(pre);
  bool byte_level = false;
  for (auto& s : steps) {
    std::string type = s.value("type", "");
    if (type == "Split") {
      if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
        throw NotImplemented(fmt::format("{}: Split behavior {} (invert {}) is not supported (Isolated only)", origin,
                                         s.value("behavior", ""), s.value("invert", false)));
      if (!s.contains("pattern") || !s["pattern"].contains("Regex"))
        throw NotImplemented(fmt::format("{}: Split patterns must be regexes", origin));
      m.splits.push_back(std::make_unique<Regex>(s["pattern"]["Regex"].get<std::string>(), origin));
    } else if (type == "ByteLevel") {
      if (s.value("use_regex", true))
        throw NotImplemented(fmt::format("{}: ByteLevel with its own regex (use_regex true) is not supported", origin));
      if (s.value("add_prefix_space", false))
        throw NotImplemented(fmt::format("{}: ByteLevel add_prefix_space is not supported", origin));
      byte_level = true;
    } else {
      throw NotImplemented(fmt::format("{}: pre-tokenizer {} is not supported", origin, type));
    }
  }
  if (!byte_level) throw NotImplemented(fmt::format("{}: only byte-level BPE tokenizers are supported", origin));
  return t;
}

void Tokenizer::Impl::bpe(const std::string& word, std::vector<int32_t>& out) const {
  if (auto c = cache.find(word); c != cache.end()) {
    out.insert(out.end(), c->second.begin(), c->second.end());
    return;
  }
  std::vector<int32_t> ids;
  if (ignore_merges) {
    if (auto v = vocab.find(word); v != vocab.end()) {
      out.push_back(v->second);
      cache.emplace(word, std::vector<int32_t>{v->second});
      return;
    }
  }
  // symbols: code points of the byte-level string, as a linked list
  std::vector<std::string> sym;
  for (size_t i = 0; i < word.size();) {
    uint32_t cp;
    size_t n = next_cp(word, i, cp);
    sym.push_back(word.substr(i, n));
    i += n;
  }
  std::vector<int> prev(sym.size()), next(sym.size());
  std::vector<bool> alive(sym.size(), true);
  for (size_t i = 0; i < sym.size(); ++i) {
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < sym.size() ? static_cast<int>(i) + 1 : -1;
  }
  using Cand = std::tuple<int32_t, int, std::string, std::string>;  // rank, pos, left, right
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int a) {
    if (a < 0 || next[a] < 0) return;
    auto it = merge_rank.find(sym[a] + " " + sym[next[a]]);
    if (it != merge_rank.end()) heap.emplace(it->second, a, sym[a], sym[next[a]]);
  };
  for (int i = 0; i + 1 < static_cast<int>(sym.size()); ++i) push(i);
  while (!heap.empty()) {
    auto [rank, a, l, r] = heap.top();
    heap.pop();
    if (!alive[a] || next[a] < 0 || sym[a] != l || sym[next[a]] != r) continue;  // stale
    int b = next[a];
    sym[a] += sym[b];
    alive[b] = false;
    next[a] = next[b];
    if (next[b] >= 0) prev[next[b]] = a;
    push(prev[a]);
    push(a);
  }
  for (int i = 0; i >= 0 && i < static_cast<int>(sym.size()); i = next[i]) {
    auto v = vocab.find(sym[i]);
    if (v == vocab.end()) throw Error(fmt::format("tokenizer: symbol '{}' is not in the vocabulary", sym[i]));
    ids.push_back(v->second);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (cache.size() < 100000) cache.emplace(word, std::move(ids));
}

void Tokenizer::Impl::encode_text(const std::string& text, std::vector<int32_t>& out) const {
  std::vector<std::string> pieces{text}, next_pieces;
  for (auto& re : splits) {
    next_pieces.clear();
    for (auto& p : pieces) re->split(p, next_pieces);
    pieces.swap(next_pieces);
  }
  const ByteMap& bm = byte_map();
  for (auto& p : pieces) {
    std::string mapped;
    for (unsigned char c : p) mapped += bm.byte_str[c];
    bpe(mapped, out);
  }
}

std::vector<int32_t> Tokenizer::encode(const std::string& raw) const {
  const Impl& m = *impl_;
  std::string text = sanitize_utf8(raw);
  // segments: (text, added id or -1); pass 1 non-normalized added tokens, pass 2 normalized ones
  std::vector<std::pair<std::string, int32_t>> segs{{text, -1}};
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<std::pair<std::string, int32_t>> out;
    for (auto& [s, id] : segs) {
      if (id >= 0) {
        out.push_back({s, id});
        continue;
      }
      size_t pos = 0, last = 0;
      while (pos < s.size()) {
        const AddedToken* hit = nullptr;  // longest token starting at pos (added is sorted by length)
        for (auto& a : m.added)
          if (a.normalized == (pass == 1) && !a.content.empty() && s.compare(pos, a.content.size(), a.content) == 0) {
            hit = &a;
            break;
          }
        if (!hit) {
          uint32_t cp;
          pos += next_cp(s, pos, cp);
          continue;
        }
        if (pos > last) out.push_back({s.substr(last, pos - last), -1});
        out.push_back({hit->content, hit->id});
        pos += hit->content.size();
        last = pos;
      }
      if (last < s.size()) out.push_back({s.substr(last), -1});
    }
    segs.swap(out);
  }
  std::vector<int32_t> ids;
  for (auto& [s, id] : segs) {
    if (id >= 0) ids.push_back(id);
    else m.encode_text(s, ids);
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const ByteMap& bm = byte_map();
  std::string bytes;
  for (int32_t id : ids) {
    std::string tok = token_text(id);
    std::string dec;
    bool ok = true;
    for (size_t i = 0; i < tok.size() && ok;) {
      uint32_t cp;
      size_t n = next_cp(tok, i, cp);
      auto it = bm.to_byte.find(cp);
      if (it == bm.to_byte.end()) ok = false;
      else dec += static_cast<char>(it->second);
      i += n;
    }
    bytes += ok ? dec : tok;
  }
  return sanitize_utf8(bytes);
}

std::string Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(impl_->id_to_token.size())) return {};
  return impl_->id_to_token[id];
}

int32_t Tokenizer::token_id(const std::string& token) const {
  for (auto& a : impl_->added)
    if (a.content == token) return a.id;
  auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(impl_->special.size()) && impl_->special[id];
}

}  // namespace dsocr

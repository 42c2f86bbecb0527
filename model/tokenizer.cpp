#include "model/tokenizer.h"

#include <fmt/format.h>
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "runtime/error.h"

namespace dsocr {
namespace {

using json = nlohmann::json;

void append_utf8(std::string& out, uint32_t cp) {
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
size_t next_cp(const std::string& s, size_t i, uint32_t& cp) {
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
uint32_t prev_cp(const std::string& s, size_t end) {
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
  ByteMap() {
    std::fill(std::begin(to_byte), std::end(to_byte), int16_t{-1});
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = keep ? b : 256 + n++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
      append_utf8(byte_str[b], to_cp[b]);
    }
  }
  // The token's bytes when every character is a byte-level one; otherwise its own UTF-8.
  std::string decode(const std::string& tok) const {
    std::string out;
    out.reserve(tok.size());
    for (size_t i = 0; i < tok.size();) {
      uint32_t cp;
      i += next_cp(tok, i, cp);
      if (cp >= kCps || to_byte[cp] < 0) return tok;
      out += static_cast<char>(to_byte[cp]);
    }
    return out;
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Unicode White_Space (Rust regex's `\s`, which tokenizers' lstrip/rstrip use).
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

// Rust regex's Unicode `\w` (UTS #18 annex C: Alphabetic, marks, decimal digits, connector
// punctuation, join controls), which tokenizers' single_word uses; PCRE2's tables decide.
bool is_word_char(uint32_t cp) {
  struct Word {
    pcre2_code* code;
    Word() {
      const char* pat = "^[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]";
      int err = 0;
      PCRE2_SIZE off = 0;
      code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off,
                           nullptr);
      if (!code) throw Error("tokenizer: the word-character class does not compile (PCRE2 older than 10.40?)");
    }
    ~Word() { pcre2_code_free(code); }
  };
  static const Word w;
  std::string c;
  append_utf8(c, cp);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(w.code, nullptr);
  int rc = pcre2_match(w.code, reinterpret_cast<PCRE2_SPTR>(c.data()), c.size(), 0, PCRE2_NO_UTF_CHECK, md, nullptr);
  pcre2_match_data_free(md);
  return rc >= 0;
}

struct Regex {
  pcre2_code* code = nullptr;
  Regex(const std::string& pattern, bool literal, const std::string& origin) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                         literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      throw Error(fmt::format("{}: pre-tokenizer Split regex does not compile at offset {}: {}", origin, off,
                              reinterpret_cast<char*>(msg)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; errors ignored
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Isolated split: matches and the gaps between them, in order, empty pieces dropped. Match data
  // per call, so that one Tokenizer may encode on several threads.
  void split(const std::string& s, std::vector<std::string>& out) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
        pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
    pcre2_match_data* md = data.get();
    if (!md) throw Error("tokenizer: out of memory for PCRE2 match data");
    size_t pos = 0, last = 0;
    while (pos <= s.size()) {
      int rc =
          pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {  // a resource limit: never split differently in silence
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof(msg));
        throw Error(fmt::format("tokenizer: pre-tokenizer regex failed on a {}-byte piece: {}", s.size(),
                                reinterpret_cast<char*>(msg)));
      }
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
  void insert(const std::string& s, int32_t token) {
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
  // Longest token starting at s[pos]: its index and length, or -1.
  int32_t longest(const std::string& s, size_t pos, size_t& len) const {
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
};

// A piece of the text being encoded: a byte range still to be tokenized, or an added token.
struct Piece {
  size_t begin, end;
  int32_t id;  // -1: text
};

// True when a normalizer does nothing: null, or a Sequence of such normalizers. Otherwise
// throws NotImplemented naming the first component that would change the text.
void check_identity_normalizer(const json& n, const std::string& origin) {
  if (n.is_null()) return;
  if (!n.is_object()) throw Error(fmt::format("{}: \"normalizer\" is not an object", origin));
  std::string type = n.value("type", std::string("?"));
  if (type == "Sequence") {
    if (!n.contains("normalizers") || !n["normalizers"].is_array())
      throw Error(fmt::format("{}: normalizer Sequence without a \"normalizers\" list", origin));
    for (auto& c : n["normalizers"]) check_identity_normalizer(c, origin);
    return;
  }
  throw NotImplemented(
      fmt::format("{}: normalizer {} is not supported (only an empty normalizer Sequence or null)", origin, type));
}

void check_post_processor(const json& p, const std::string& origin) {
  if (p.is_null()) return;
  if (!p.is_object()) throw Error(fmt::format("{}: \"post_processor\" is not an object", origin));
  std::string type = p.value("type", std::string("?"));
  if (type == "ByteLevel" || type == "TemplateProcessing") return;  // no effect on add_special_tokens=False ids
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array())
      throw Error(fmt::format("{}: post-processor Sequence without a \"processors\" list", origin));
    for (auto& c : p["processors"]) check_post_processor(c, origin);
    return;
  }
  throw NotImplemented(
      fmt::format("{}: post-processor {} is not supported (ByteLevel, TemplateProcessing, a Sequence of them, or null)",
                  origin, type));
}

std::string type_of(const json& j) { return j.is_object() ? j.value("type", std::string("?")) : j.dump(); }

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
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c == 0xe0) {
      len = 3;
      lo = 0xa0;
    } else if (c >= 0xe1 && c <= 0xec) {
      len = 3;
    } else if (c == 0xed) {
      len = 3;
      hi = 0x9f;
    } else if (c >= 0xee && c <= 0xef) {
      len = 3;
    } else if (c == 0xf0) {
      len = 4;
      lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
      len = 4;
    } else if (c == 0xf4) {
      len = 4;
      hi = 0x8f;
    }
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
    if (k == len)
      out.append(s, i, len);
    else
      out += "\xef\xbf\xbd";  // maximal subpart replaced once
    i += k;
  }
  return out;
}

struct Tokenizer::Impl {
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;  // added tokens over the vocabulary
  std::vector<bool> has_token, special;  // per id
  std::unordered_set<std::string> special_contents;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (left id, right id) -> (rank, merged id)
  int32_t byte_id[256];                                              // vocabulary id of each byte's character
  int32_t unk_id = -1;
  bool fuse_unk = false, ignore_merges = false;
  std::vector<AddedToken> added;  // file order
  std::unordered_map<std::string, int32_t> added_id;
  Trie trie_raw, trie_normalized;  // added tokens with normalized false / true
  std::vector<std::unique_ptr<Regex>> splits;
  bool byte_level_decoder = false;  // else tokens joined with " "

  void find_added(const std::string& text, const Trie& trie, size_t begin, size_t end, std::vector<Piece>& out) const;
  void bpe(const std::string& piece, std::vector<int32_t>& out) const;
  void encode_text(const std::string& text, std::vector<int32_t>& out) const;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(fmt::format(
        "tokenizer file {} is missing or unreadable (the checkpoint folder must contain tokenizer.json)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

Tokenizer Tokenizer::from_json(const std::string& text, const std::string& origin) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: not a JSON object", origin));
  Tokenizer t;
  Impl& m = *t.impl_;
  try {
    if (j.contains("version") && j["version"] != "1.0")
      throw NotImplemented(
          fmt::format("{}: tokenizer.json version {} is not supported (1.0)", origin, j["version"].dump()));
    for (const char* k : {"truncation", "padding"})
      if (j.contains(k) && !j[k].is_null())
        throw NotImplemented(fmt::format("{}: {} is not supported (it must be null)", origin, k));

    // ---- model type and options
    if (!j.contains("model") || !j["model"].is_object()) throw Error(fmt::format("{}: no \"model\" object", origin));
    const json& model = j["model"];
    if (model.value("type", std::string("BPE")) != "BPE")
      throw NotImplemented(
          fmt::format("{}: tokenizer model {} is not supported (BPE only)", origin, model["type"].get<std::string>()));
    if (model.value("byte_fallback", false))
      throw NotImplemented(fmt::format("{}: BPE byte_fallback is not supported", origin));
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      throw NotImplemented(fmt::format("{}: BPE dropout is not supported (encoding would be random)", origin));
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && model[k] != "")
        throw NotImplemented(fmt::format("{}: BPE {} is not supported", origin, k));

    // ---- normalizer, pre-tokenizer, post-processor, decoder: an unsupported component is named
    // before the contents are checked
    if (j.contains("normalizer")) check_identity_normalizer(j["normalizer"], origin);
    const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
    std::vector<json> steps;
    if (pre.is_object() && pre.value("type", "") == "Sequence") {
      if (!pre.contains("pretokenizers") || !pre["pretokenizers"].is_array())
        throw Error(fmt::format("{}: pre-tokenizer Sequence without a \"pretokenizers\" list", origin));
      steps = pre["pretokenizers"].get<std::vector<json>>();
    } else if (!pre.is_null()) {
      steps.push_back(pre);
    }
    bool byte_level = false;
    for (auto& s : steps) {
      std::string type = type_of(s);
      if (byte_level)
        throw NotImplemented(fmt::format("{}: pre-tokenizer {} after ByteLevel is not supported", origin, type));
      if (type == "Split") {
        if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
          throw NotImplemented(
              fmt::format("{}: pre-tokenizer Split with behavior {}{} is not supported (Isolated only)", origin,
                          s.value("behavior", "?"), s.value("invert", false) ? ", inverted" : ""));
        const json& p = s.contains("pattern") ? s["pattern"] : json();
        if (p.contains("Regex") && p["Regex"].is_string())
          m.splits.push_back(std::make_unique<Regex>(p["Regex"].get<std::string>(), false, origin));
        else if (p.contains("String") && p["String"].is_string())
          m.splits.push_back(std::make_unique<Regex>(p["String"].get<std::string>(), true, origin));
        else
          throw Error(fmt::format("{}: pre-tokenizer Split pattern {} is neither Regex nor String", origin, p.dump()));
      } else if (type == "ByteLevel") {
        if (s.value("use_regex", true))
          throw NotImplemented(fmt::format(
              "{}: pre-tokenizer ByteLevel with use_regex true (its own GPT-2 regex) is not supported", origin));
        if (s.value("add_prefix_space", true))
          throw NotImplemented(
              fmt::format("{}: pre-tokenizer ByteLevel with add_prefix_space true is not supported", origin));
        byte_level = true;
      } else {
        throw NotImplemented(fmt::format("{}: pre-tokenizer {} is not supported (Split, ByteLevel)", origin, type));
      }
    }
    if (!byte_level)
      throw NotImplemented(
          fmt::format("{}: only byte-level BPE is supported (the pre-tokenizer must end with ByteLevel)", origin));
    if (j.contains("post_processor")) check_post_processor(j["post_processor"], origin);
    const json& dec = j.contains("decoder") ? j["decoder"] : json();
    if (!dec.is_null()) {
      if (type_of(dec) != "ByteLevel")
        throw NotImplemented(fmt::format("{}: decoder {} is not supported (ByteLevel or null)", origin, type_of(dec)));
      m.byte_level_decoder = true;
    }
    // ---- model contents
    if (!model.contains("vocab") || !model["vocab"].is_object())
      throw Error(fmt::format("{}: model.vocab missing", origin));
    m.ignore_merges = model.value("ignore_merges", false);
    m.fuse_unk = model.value("fuse_unk", false);
    int32_t max_id = -1;
    m.vocab.reserve(model["vocab"].size());
    for (auto& [tok, id] : model["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
        throw Error(fmt::format("{}: vocab entry {} has a bad id", origin, tok));
      m.vocab[tok] = id.get<int32_t>();
      max_id = std::max(max_id, id.get<int32_t>());
    }
    auto vocab_id = [&](const std::string& s) {
      auto it = m.vocab.find(s);
      return it == m.vocab.end() ? -1 : it->second;
    };
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      m.unk_id = vocab_id(model["unk_token"].get<std::string>());
      if (m.unk_id < 0)
        throw Error(fmt::format("{}: unk_token {} is not in the vocabulary", origin, model["unk_token"].dump()));
    }
    if (model.contains("merges") && model["merges"].is_array()) {
      int32_t rank = 0;
      m.merges.reserve(model["merges"].size());
      for (auto& mg : model["merges"]) {
        std::string a, b;
        if (mg.is_string()) {
          std::string s = mg.get<std::string>();
          size_t sp = s.find(' ');
          if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
            throw Error(
                fmt::format("{}: merge #{} {} is not two tokens separated by one space", origin, rank, mg.dump()));
          a = s.substr(0, sp), b = s.substr(sp + 1);
        } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
          a = mg[0].get<std::string>(), b = mg[1].get<std::string>();
        } else {
          throw Error(fmt::format("{}: merge #{} is malformed", origin, rank));
        }
        int32_t ia = vocab_id(a), ib = vocab_id(b), iab = vocab_id(a + b);
        if (ia < 0 || ib < 0 || iab < 0)
          throw Error(
              fmt::format("{}: merge #{} ({} {}) uses a token that is not in the vocabulary", origin, rank, a, b));
        m.merges[(static_cast<uint64_t>(ia) << 32) | static_cast<uint32_t>(ib)] = {rank,
                                                                                   iab};  // a repeat: the last wins
        ++rank;
      }
    }
    const ByteMap& bm = byte_map();
    for (int b = 0; b < 256; ++b) m.byte_id[b] = vocab_id(bm.byte_str[b]);

    // ---- added tokens
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      if (!j["added_tokens"].is_array()) throw Error(fmt::format("{}: \"added_tokens\" is not a list", origin));
      for (auto& a : j["added_tokens"]) {
        if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string() ||
            !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24))
          throw Error(fmt::format("{}: added token {} lacks a valid id or content", origin, a.dump()));
        AddedToken at{a["content"].get<std::string>(), a["id"].get<int32_t>(),
                      a.value("special", false),       a.value("normalized", !a.value("special", false)),
                      a.value("lstrip", false),        a.value("rstrip", false),
                      a.value("single_word", false)};
        if (at.content.empty() || m.added_id.count(at.content)) continue;  // tokenizers ignores these too
        if (int32_t v = vocab_id(at.content); v >= 0 && v != at.id)
          throw Error(fmt::format("{}: added token {} has id {} but the vocabulary gives it {}", origin,
                                  a["content"].dump(), at.id, v));
        m.added_id.emplace(at.content, at.id);
        if (at.special) m.special_contents.insert(at.content);
        m.added.push_back(at);
        max_id = std::max(max_id, at.id);
      }
    }
    // tokenizers' tries hold the special tokens first, then the others (the order only matters for equal contents)
    for (int pass = 0; pass < 2; ++pass)
      for (size_t i = 0; i < m.added.size(); ++i) {
        const AddedToken& a = m.added[i];
        if (a.special == (pass == 0))
          (a.normalized ? m.trie_normalized : m.trie_raw).insert(a.content, static_cast<int32_t>(i));
      }
    m.id_to_token.assign(max_id + 1, std::string());
    m.has_token.assign(max_id + 1, false);
    m.special.assign(max_id + 1, false);
    for (auto& [tok, id] : m.vocab) m.id_to_token[id] = tok, m.has_token[id] = true;
    for (auto& a : m.added) {
      m.id_to_token[a.id] = a.content;
      m.has_token[a.id] = true;
      m.special[a.id] = a.special;
    }

  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: malformed tokenizer.json: {}", origin, e.what()));
  }
  return t;
}

void Tokenizer::Impl::bpe(const std::string& piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    std::string mapped;
    for (unsigned char c : piece) mapped += byte_map().byte_str[c];
    if (auto v = vocab.find(mapped); v != vocab.end()) {
      out.push_back(v->second);
      return;
    }
  }
  // symbols: one per byte (its byte-level character); unknown ones become unk (fused when asked) or are dropped
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  bool last_unk = false;
  for (unsigned char c : piece) {
    int32_t id = byte_id[c];
    if (id >= 0) {
      sym.push_back(id);
      last_unk = false;
    } else if (unk_id >= 0) {
      if (!(last_unk && fuse_unk)) sym.push_back(unk_id);
      last_unk = true;
    }
  }
  int n = static_cast<int>(sym.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  auto lookup = [&](int a) -> const std::pair<int32_t, int32_t>* {
    auto it = merges.find((static_cast<uint64_t>(sym[a]) << 32) | static_cast<uint32_t>(sym[next[a]]));
    return it == merges.end() ? nullptr : &it->second;
  };
  using Cand = std::tuple<int32_t, int, int32_t>;  // rank, position, merged id: lowest rank, then leftmost
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int a) {
    if (a < 0 || next[a] < 0) return;
    if (auto* mg = lookup(a)) heap.emplace(mg->first, a, mg->second);
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    auto [rank, a, merged] = heap.top();
    heap.pop();
    if (!alive[a] || next[a] < 0) continue;
    auto* mg = lookup(a);
    if (!mg || mg->second != merged) continue;  // stale: a neighbour changed since
    int b = next[a];
    sym[a] = merged;
    alive[b] = false;
    next[a] = next[b];
    if (next[b] >= 0) prev[next[b]] = a;
    push(prev[a]);
    push(a);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void Tokenizer::Impl::encode_text(const std::string& text, std::vector<int32_t>& out) const {
  std::vector<std::string> pieces{text}, next_pieces;
  for (auto& re : splits) {
    next_pieces.clear();
    for (auto& p : pieces) re->split(p, next_pieces);
    pieces.swap(next_pieces);
  }
  for (auto& p : pieces) bpe(p, out);
}

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

// Text-level pieces of the tokenizer (model/tokenizer_impl.h): UTF-8 sanitizing, GPT-2's byte
// map, the Unicode classes of added-token matching, and the pre-tokenizer's PCRE2 Split.
#include <fmt/format.h>

#include <algorithm>

#include "model/tokenizer_impl.h"
#include "runtime/error.h"

namespace dsocr {
namespace tokenizer_detail {

ByteMap::ByteMap() {
  std::fill(std::begin(to_byte), std::end(to_byte), int16_t{-1});
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    to_cp[b] = keep ? b : 256 + n++;
    to_byte[to_cp[b]] = static_cast<int16_t>(b);
    append_utf8(byte_str[b], to_cp[b]);
  }
}

std::string ByteMap::decode(const std::string& tok) const {
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

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

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

Regex::Regex(const std::string& pattern, bool literal, const std::string& origin) {
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

Regex::~Regex() { pcre2_code_free(code); }

void Regex::split(const std::string& s, std::vector<std::string>& out) const {
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
      pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
  pcre2_match_data* md = data.get();
  if (!md) throw Error("tokenizer: out of memory for PCRE2 match data");
  size_t pos = 0, last = 0;
  while (pos <= s.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
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

}  // namespace tokenizer_detail

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

}  // namespace dsocr

#include "model/text_stream.h"

namespace dsocr {
namespace {

// Length (0..3) of a tail of s that is a valid but unfinished UTF-8 sequence.
size_t unfinished_utf8_tail(const std::string& s) {
  for (size_t L = 1; L <= 3 && L <= s.size(); ++L) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data()) + s.size() - L;
    unsigned char b = p[0];
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf)
      need = 2;
    else if (b >= 0xe0 && b <= 0xef)
      need = 3, lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
    else if (b >= 0xf0 && b <= 0xf4)
      need = 4, lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
    else if (b >= 0x80 && b <= 0xbf)
      continue;  // a continuation byte: look further back
    else
      return 0;
    if (need <= L) return 0;
    for (size_t k = 1; k < L; ++k) {
      unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xbf;
      if (p[k] < lo_k || p[k] > hi_k) return 0;
    }
    return L;
  }
  return 0;
}

}  // namespace

std::string TextStream::push(int32_t id) {
  pending_ += tok_.token_bytes(id);
  size_t keep = unfinished_utf8_tail(pending_);
  std::string out = sanitize_utf8(pending_.substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string TextStream::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace dsocr

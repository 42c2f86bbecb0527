// Fuzz target: the bundled checkpoint's tokenizer (tests/goldens/tiny-ckpt/tokenizer.json) on
// arbitrary bytes. First byte even: encode the rest as text (invalid UTF-8 included), check every id
// is in the vocabulary and that decoding gives the text back (with invalid UTF-8 replaced by
// U+FFFD, as byte-level BPE without a normalizer must). Odd: decode the rest read as little-endian
// int32 ids (unknown and negative ids included).
#include <cstring>
#include <string>

#include "fuzz/fuzz_util.h"
#include "model/tokenizer.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Tokenizer tok = Tokenizer::from_file(fuzz::source_dir() + "/tests/goldens/tiny-ckpt/tokenizer.json");
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  DSOCR_FUZZ_EXPECT_ERRORS({
    if (mode % 2 == 0) {
      std::string text(reinterpret_cast<const char*>(data), size);
      std::vector<int32_t> ids = tok.encode(text);
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
      if (tok.decode(ids) != sanitize_utf8(text)) __builtin_trap();  // encode/decode must round-trip
    } else {
      std::vector<int32_t> ids(size / 4);
      if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
      (void)tok.decode(ids);
      for (int32_t id : ids) (void)tok.token_text(id), (void)tok.is_special(id);
    }
  });
  return 0;
}

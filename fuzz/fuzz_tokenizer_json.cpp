// Fuzz target: tokenizer.json text through Tokenizer::from_json; an accepted tokenizer then
// encodes and decodes a short mixed text (ASCII, CJK, an emoji, an added-token lookalike).
#include <string>

#include "fuzz/fuzz_util.h"
#include "model/tokenizer.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  DSOCR_FUZZ_EXPECT_ERRORS({
    Tokenizer tok = Tokenizer::from_json(text, "fuzz/tokenizer.json");
    std::vector<int32_t> ids = tok.encode("Hi <image>\n| a | 表 |  \xF0\x9F\x98\x80 x");
    std::string back = tok.decode(ids);
    std::vector<int32_t> some;
    for (int32_t id = -2; id < tok.vocab_size() + 2 && id < 300; ++id) some.push_back(id);
    back += tok.decode(some);
    (void)tok.token_id("<image>");
  });
  return 0;
}

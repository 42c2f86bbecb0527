// Text as it is generated: UTF-8 pieces from token ids, one id at a time.
#pragma once
#include <cstdint>
#include <string>

#include "model/tokenizer.h"

namespace dsocr {

// Streaming detokenisation: push() returns the newly complete UTF-8 text (a multi-byte character
// split across tokens is held back until it is whole); flush() returns the rest. The
// concatenation of every piece equals tok.decode(all ids).
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;
};

}  // namespace dsocr

// Test-only tool for reference/tests/test_tokenizer_released.py: runs dsocr's tokenizer over a
// list of texts and id lists so that the reference suite can compare each result with Hugging
// Face `tokenizers`.
//
//   tokenize_cases TOKENIZER_JSON CASES_JSON OUT_JSON
//
// CASES_JSON: {"texts": [str, ...], "ids": [[int, ...], ...]}
// OUT_JSON:   {"load_s": seconds to read tokenizer.json, "encode_s": seconds for all texts,
//              "encode": [[ids of each text]],
//              "encode_decode": [decode(ids of each text)], "encode_stream": [TextStream over them],
//              "decode": [decode(ids)], "decode_skip": [decode(ids, skip_special_tokens)],
//              "decode_stream": [TextStream over ids]}
// TextStream (model/ocr.h) is fed one id at a time; its pieces plus flush() are concatenated.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/text_stream.h"
#include "runtime/error.h"
#include "model/tokenizer.h"

using json = nlohmann::json;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string stream(const dsocr::Tokenizer& tok, const std::vector<int32_t>& ids) {
  dsocr::TextStream s(tok);
  std::string out;
  for (int32_t id : ids) out += s.push(id);
  return out + s.flush();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    fmt::print(stderr, "usage: tokenize_cases TOKENIZER_JSON CASES_JSON OUT_JSON\n");
    return 2;
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    dsocr::Tokenizer tok = dsocr::Tokenizer::from_file(argv[1]);
    double load_s = seconds_since(t0);

    std::ifstream in(argv[2], std::ios::binary);
    if (!in) throw dsocr::Error(fmt::format("cannot read {}", argv[2]));
    std::stringstream ss;
    ss << in.rdbuf();
    json cases = json::parse(ss.str());

    json out;
    out["load_s"] = load_s;
    std::vector<std::vector<int32_t>> encoded;
    t0 = std::chrono::steady_clock::now();
    for (auto& t : cases.at("texts")) encoded.push_back(tok.encode(t.get<std::string>()));
    out["encode_s"] = seconds_since(t0);
    out["encode"] = encoded;
    out["encode_decode"] = json::array();
    out["encode_stream"] = json::array();
    for (auto& ids : encoded) {
      out["encode_decode"].push_back(tok.decode(ids));
      out["encode_stream"].push_back(stream(tok, ids));
    }
    out["decode"] = json::array();
    out["decode_skip"] = json::array();
    out["decode_stream"] = json::array();
    for (auto& j : cases.at("ids")) {
      auto ids = j.get<std::vector<int32_t>>();
      out["decode"].push_back(tok.decode(ids));
      out["decode_skip"].push_back(tok.decode(ids, true));
      out["decode_stream"].push_back(stream(tok, ids));
    }
    std::ofstream o(argv[3], std::ios::binary);
    o << out.dump();
    if (!o) throw dsocr::Error(fmt::format("cannot write {}", argv[3]));
  } catch (const std::exception& e) {
    fmt::print(stderr, "tokenize_cases: {}\n", e.what());
    return 1;
  }
  return 0;
}

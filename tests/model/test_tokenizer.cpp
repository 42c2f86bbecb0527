// model/tokenizer: the tokenizer.json forms DeepSeek's files use (empty normalizer Sequence,
// ByteLevel post-processor and decoder with their flags, added tokens with normalized / lstrip /
// rstrip / single_word / special), the components that must be refused by name, and a missing
// file. Small synthetic tokenizers: the 256 byte-level characters (id = byte) and five merges
// (he, ll, hell, hello, Ġw: ids 256..260), added tokens from 261. Every expected id list below was
// produced by Hugging Face tokenizers 0.23.3 on the same JSON (add_special_tokens=False); the
// released 128k-token file is compared in reference/tests/test_tokenizer_released.py.
#include <nlohmann/json.hpp>

#include "harness/harness.h"
#include "model/text_stream.h"
#include "model/tokenizer.h"

using namespace dsocr;
using json = nlohmann::json;
using Ids = std::vector<int32_t>;

namespace {

std::string byte_char(int b) {  // GPT-2's bytes_to_unicode, as UTF-8
  int n = 0;
  for (int x = 0; x < 256; ++x) {
    bool keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
    uint32_t cp = keep ? x : 256 + n++;
    if (x == b) {
      std::string s;
      if (cp < 0x80)
        s += static_cast<char>(cp);
      else
        s += static_cast<char>(0xc0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3f));
      return s;
    }
  }
  return {};
}

json added(const std::string& content, int id, bool special = true, bool normalized = false, bool lstrip = false,
           bool rstrip = false, bool single_word = false) {
  return {{"id", id},         {"content", content}, {"special", special},        {"normalized", normalized},
          {"lstrip", lstrip}, {"rstrip", rstrip},   {"single_word", single_word}};
}

// The DeepSeek layout in miniature: one Split regex, then ByteLevel without its own regex.
json tokenizer_json(const std::vector<json>& added_tokens = {}) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const char* merges[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xc4\xa0", "w"}};
  json m = json::array();
  int id = 256;
  for (auto& mg : merges) {
    vocab[std::string(mg[0]) + mg[1]] = id++;
    m.push_back(std::string(mg[0]) + " " + mg[1]);
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added_tokens},
          {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"},
               {"pattern", {{"Regex", " ?\\p{L}+| ?\\p{N}+|\\s+| ?[^\\s\\p{L}\\p{N}]+"}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
          {"post_processor",
           {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", m}}}};
}

Tokenizer load(const json& j) { return Tokenizer::from_json(j.dump(), "test.json"); }

// The message of the exception `f` throws ("" when none); `not_implemented` says whether it was NotImplemented.
template <class F>
std::string error_of(F&& f, bool* not_implemented = nullptr) {
  try {
    f();
  } catch (const NotImplemented& e) {
    if (not_implemented) *not_implemented = true;
    return e.what();
  } catch (const Error& e) {
    if (not_implemented) *not_implemented = false;
    return e.what();
  }
  return "";
}

// Loading `j` must throw NotImplemented whose message contains `needle`.
void expect_refused(const json& j, const std::string& needle) {
  bool ni = false;
  std::string msg = error_of([&] { load(j); }, &ni);
  EXPECT_TRUE(ni) << "expected NotImplemented containing '" << needle << "', got: '" << msg << "'";
  EXPECT_NE(msg.find(needle), std::string::npos) << "got: " << msg;
  EXPECT_NE(msg.find("test.json"), std::string::npos) << "the message names the file: " << msg;
}

}  // namespace

TEST(tokenizer, plain_bpe_and_round_trip) {
  Tokenizer t = load(tokenizer_json());
  EXPECT_EQ(t.encode("hello world"), (Ids{259, 260, 111, 114, 108, 100}));
  EXPECT_EQ(t.decode(t.encode("hello world")), "hello world");
  EXPECT_EQ(t.encode(""), Ids{});
  EXPECT_EQ(t.vocab_size(), 261);
}

TEST(tokenizer, normalizer_forms) {
  json j = tokenizer_json();
  EXPECT_NO_THROW(load(j));  // empty Sequence (DeepSeek-V3's tokenizer.json)
  j["normalizer"] = nullptr;
  EXPECT_NO_THROW(load(j));
  j.erase("normalizer");
  EXPECT_NO_THROW(load(j));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Sequence"}, {"normalizers", json::array()}}}}};
  EXPECT_NO_THROW(load(j));
  j["normalizer"] = {{"type", "NFKC"}};
  expect_refused(j, "normalizer NFKC is not supported");
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}};
  expect_refused(j, "normalizer Lowercase is not supported");
  j["model"]["merges"].push_back("t r");  // broken contents too: the component is still what the message names
  expect_refused(j, "normalizer Lowercase is not supported");
}

TEST(tokenizer, post_processor_forms_do_not_change_ids) {
  // encode() is add_special_tokens=False: TemplateProcessing's BOS is not added (tokenizers agrees)
  const Ids want{32, 259, 260, 111, 114, 108, 100};
  json tp = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<m>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<m>", {{"id", "<m>"}, {"ids", {261}}, {"tokens", {"<m>"}}}}}}};
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  for (json pp : {json(nullptr), bl, tp, json{{"type", "Sequence"}, {"processors", {bl, tp}}}}) {
    json j = tokenizer_json({added("<m>", 261)});
    j["post_processor"] = pp;
    EXPECT_EQ(load(j).encode(" hello world"), want) << pp.dump();
  }
  json j = tokenizer_json();
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"[SEP]", 1}}, {"cls", {"[CLS]", 0}}};
  expect_refused(j, "post-processor BertProcessing is not supported");
  j["post_processor"] = {{"type", "Sequence"}, {"processors", {bl, {{"type", "RobertaProcessing"}}}}};
  expect_refused(j, "post-processor RobertaProcessing is not supported");
}

TEST(tokenizer, decoder_forms_and_skip_special_tokens) {
  json j = tokenizer_json({added("<m>", 261), added("<n>", 262, false, true)});
  Tokenizer t = load(j);
  Ids ids = t.encode("hello <m> world<n>!");
  EXPECT_EQ(ids, (Ids{259, 32, 261, 260, 111, 114, 108, 100, 262, 33}));
  EXPECT_EQ(t.decode(ids), "hello <m> world<n>!");
  EXPECT_EQ(t.decode(ids, true), "hello  world<n>!");  // <n> is not special
  EXPECT_TRUE(t.is_special(261));
  EXPECT_FALSE(t.is_special(262));
  EXPECT_EQ(t.decode({104, 999, 0xc3, 0xa9, 261, -5}), "h\xc3\xa9<m>");  // ids without a token are dropped
  EXPECT_EQ(t.decode({0xc3}), "\xef\xbf\xbd");                           // a lone lead byte: U+FFFD
  EXPECT_EQ(t.token_bytes(0xc3), "\xc3");
  EXPECT_EQ(t.token_bytes(261), "<m>");
  EXPECT_EQ(t.token_bytes(999), "");

  j["decoder"] = nullptr;  // tokenizers then joins the token strings with spaces
  Tokenizer n = load(j);
  EXPECT_EQ(n.decode(ids), "hello \xc4\xa0 <m> \xc4\xa0w o r l d <n> !");
  EXPECT_EQ(n.decode({104, 999, 105, 261}), "h i <m>");
  EXPECT_EQ(n.decode({104, 999, 105, 261}, true), "h i");
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}};
  expect_refused(j, "decoder Metaspace is not supported");
}

TEST(tokenizer, added_tokens_lstrip_rstrip_swallow_unicode_whitespace) {
  Tokenizer both = load(tokenizer_json({added("<m>", 261, true, false, true, true)}));
  EXPECT_EQ(both.encode("a <m> b"), (Ids{97, 261, 98}));
  EXPECT_EQ(both.encode("a\xe3\x80\x80\t<m>\xc2\xa0\xe2\x80\x83"
                        "b"),
            (Ids{97, 261, 98}));  // U+3000, tab, NBSP, U+2003
  EXPECT_EQ(both.encode("  <m>  "), (Ids{261}));
  EXPECT_EQ(both.encode("hello<m>hello"), (Ids{259, 261, 259}));
  EXPECT_EQ(load(tokenizer_json({added("<m>", 261, true, false, false, true)})).encode("a <m>  b"),
            (Ids{97, 32, 261, 98}));
  EXPECT_EQ(load(tokenizer_json({added("<m>", 261, true, false, true, false)})).encode("a  <m>  b"),
            (Ids{97, 261, 32, 32, 98}));
  // a later token's lstrip stops at the end of the earlier token's rstrip
  EXPECT_EQ(load(tokenizer_json({added(" <m>", 261, true, false, true), added("<n>", 262, true, false, false, true)}))
                .encode("a<n>  <m> b"),
            (Ids{97, 262, 261, 32, 98}));
  // matches are found before stripping: a whitespace token inside a swallowed run still counts
  EXPECT_EQ(load(tokenizer_json({added("  ", 261), added("<n>", 262, true, false, false, true)})).encode("a<n>    b"),
            (Ids{97, 262, 261, 261, 98}));
}

TEST(tokenizer, added_tokens_single_word_needs_word_boundaries) {
  Tokenizer t = load(tokenizer_json({added("<m>", 261, true, false, false, false, true)}));
  EXPECT_EQ(t.encode("x<m> <m>"), (Ids{120, 60, 109, 62, 32, 261}));
  EXPECT_EQ(t.encode("<m>y"), (Ids{60, 109, 62, 121}));
  EXPECT_EQ(t.encode("(<m>)"), (Ids{40, 261, 41}));
  EXPECT_EQ(t.encode("<m><m>"), (Ids{261, 261}));
  // Rust regex's \w: marks, decimal digits, connector punctuation and joiners are word characters; U+00B2 is not
  EXPECT_EQ(t.encode("e\xcc\x81<m>"), (Ids{101, 204, 129, 60, 109, 62}));
  EXPECT_EQ(t.encode("\xd9\xa3<m>"), (Ids{217, 163, 60, 109, 62}));
  EXPECT_EQ(t.encode("_<m>"), (Ids{95, 60, 109, 62}));
  EXPECT_EQ(t.encode("<m>\xe2\x80\x8d"), (Ids{60, 109, 62, 226, 128, 141}));
  EXPECT_EQ(t.encode("\xc2\xb2<m>"), (Ids{194, 178, 261}));
  // a discarded match is not searched again for shorter tokens inside it
  Tokenizer u = load(tokenizer_json({added("abc", 261, true, false, false, false, true), added("bc", 262)}));
  EXPECT_EQ(u.encode("xabc"), (Ids{120, 97, 98, 99}));
  EXPECT_EQ(u.encode("x abc bc"), (Ids{120, 32, 261, 32, 262}));
}

TEST(tokenizer, added_tokens_leftmost_longest_and_two_passes) {
  EXPECT_EQ(load(tokenizer_json({added("<a>", 261), added("<a>b", 262)})).encode("<a>bc <a>"), (Ids{262, 99, 32, 261}));
  EXPECT_EQ(load(tokenizer_json({added("ab", 261), added("bcd", 262)})).encode("abcd"), (Ids{261, 99, 100}));
  // non-normalized tokens are matched over the whole text first, normalized ones over the rest
  Tokenizer t = load(tokenizer_json({added("xy", 261, false, true), added("yz", 262)}));
  EXPECT_EQ(t.encode("xyz"), (Ids{120, 262}));
  EXPECT_EQ(t.encode("xyxy"), (Ids{261, 261}));
  EXPECT_EQ(t.token_id("yz"), 262);
  EXPECT_EQ(t.token_id("he"), 256);
  EXPECT_EQ(t.token_id("nope"), -1);
}

TEST(tokenizer, bpe_model_options) {
  json j = tokenizer_json();
  json vocab = j["model"]["vocab"];
  vocab.erase("x");
  j["model"]["vocab"] = vocab;
  EXPECT_EQ(load(j).encode("axb hello"), (Ids{97, 98, 32, 259}));  // no unk_token: the unknown byte is dropped
  j["model"]["unk_token"] = "a";
  EXPECT_EQ(load(j).encode("axxb"), (Ids{97, 97, 97, 98}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(j).encode("axxb"), (Ids{97, 97, 98}));
  j["model"]["unk_token"] = "nope";
  EXPECT_NE(error_of([&] { load(j); }).find("unk_token \"nope\" is not in the vocabulary"), std::string::npos);

  json s = tokenizer_json();  // Split with a literal String pattern
  s["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", "l"}};
  EXPECT_EQ(load(s).encode("hello"), (Ids{256, 108, 108, 111}));

  json bad = tokenizer_json();
  bad["model"]["merges"].push_back("h q\xc3\xa9");
  EXPECT_NE(error_of([&] { load(bad); }).find("merge #5"), std::string::npos);
  bad = tokenizer_json();
  bad["model"]["merges"].push_back("a b c");
  EXPECT_NE(error_of([&] { load(bad); }).find("two tokens separated by one space"), std::string::npos);
}

TEST(tokenizer, unsupported_components_are_named) {
  json j = tokenizer_json();
  j["model"]["type"] = "WordPiece";
  expect_refused(j, "tokenizer model WordPiece is not supported");
  j = tokenizer_json();
  j["model"]["byte_fallback"] = true;
  expect_refused(j, "byte_fallback");
  j = tokenizer_json();
  j["model"]["dropout"] = 0.1;
  expect_refused(j, "dropout");
  j = tokenizer_json();
  j["model"]["continuing_subword_prefix"] = "##";
  expect_refused(j, "continuing_subword_prefix");
  j = tokenizer_json();
  j["truncation"] = {{"max_length", 8}};
  expect_refused(j, "truncation");

  j = tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Metaspace"}};
  expect_refused(j, "pre-tokenizer Metaspace is not supported");
  j = tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  expect_refused(j, "pre-tokenizer Split with behavior Removed is not supported");
  j = tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true;
  expect_refused(j, "ByteLevel with use_regex true");
  j = tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  expect_refused(j, "ByteLevel with add_prefix_space true");
  j = tokenizer_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_refused(j, "pre-tokenizer Whitespace is not supported");
  j = tokenizer_json();
  j["pre_tokenizer"] = nullptr;
  expect_refused(j, "only byte-level BPE is supported");
  j = tokenizer_json();
  auto& steps = j["pre_tokenizer"]["pretokenizers"];
  steps.push_back(steps[0]);
  expect_refused(j, "pre-tokenizer Split after ByteLevel is not supported");
}

TEST(tokenizer, malformed_and_missing_files) {
  std::string msg = error_of([] { Tokenizer::from_file("/nonexistent/dir/tokenizer.json"); });
  EXPECT_NE(msg.find("/nonexistent/dir/tokenizer.json is missing or unreadable"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { Tokenizer::from_json("{not json", "x.json"); }).find("x.json: not a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of([] { Tokenizer::from_json("{}", "x.json"); }).find("no \"model\" object"), std::string::npos);
  json j = tokenizer_json();
  j["added_tokens"] = {{{"content", "<m>"}}};
  EXPECT_NE(error_of([&] { load(j); }).find("lacks a valid id or content"), std::string::npos);
  j = tokenizer_json();
  j["added_tokens"] = {added("b", 262)};  // tokenizers would give it the vocabulary's id, 98
  EXPECT_NE(error_of([&] { load(j); }).find("added token \"b\" has id 262 but the vocabulary gives it 98"),
            std::string::npos);
  j = tokenizer_json();
  j["model"]["vocab"]["h"] = "seven";
  EXPECT_NE(error_of([&] { load(j); }).find("vocab entry h has a bad id"), std::string::npos);
  j = tokenizer_json();
  j["normalizer"] = {{"type", "Sequence"}};
  EXPECT_NE(error_of([&] { load(j); }).find("without a \"normalizers\" list"), std::string::npos);
  j = tokenizer_json();
  j["model"]["ignore_merges"] = "yes";  // wrong JSON type: an Error naming the file, not a JSON library exception
  EXPECT_NE(error_of([&] { load(j); }).find("test.json: malformed tokenizer.json"), std::string::npos);
}

TEST(tokenizer, text_stream_holds_split_characters) {
  // byte tokens of 😀 (F0 9F 98 80) and 中 (E4 B8 AD) one at a time: nothing until a character is complete
  Tokenizer t = load(tokenizer_json({added("<m>", 261)}));
  TextStream s(t);
  std::string all;
  for (int32_t id : {0xf0, 0x9f, 0x98}) EXPECT_EQ(s.push(id), "");
  EXPECT_EQ(s.push(0x80), "\xf0\x9f\x98\x80");
  EXPECT_EQ(s.push(0xe4), "");
  EXPECT_EQ(s.push(261), "\xef\xbf\xbd<m>");  // an interrupted character: U+FFFD, as decode()
  EXPECT_EQ(s.push(0xb8), "\xef\xbf\xbd");    // a stray continuation byte
  EXPECT_EQ(s.push(0xe4), "");
  EXPECT_EQ(s.flush(), "\xef\xbf\xbd");
  EXPECT_EQ(t.decode({0xf0, 0x9f, 0x98, 0x80, 0xe4, 261, 0xb8, 0xe4}),
            "\xf0\x9f\x98\x80\xef\xbf\xbd<m>\xef\xbf\xbd\xef\xbf\xbd");
}

// Reading a Hugging Face tokenizer.json into Tokenizer::Impl (model/tokenizer_impl.h). The
// components are checked first, so that an unsupported one is named before the contents are
// looked at; see model/tokenizer.h for what is accepted.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/tokenizer_impl.h"
#include "runtime/error.h"

namespace dsocr {
namespace {

using json = nlohmann::json;
using tokenizer_detail::Regex;

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

// The "model" object, after its type and options are checked (BPE without byte_fallback, dropout,
// continuing_subword_prefix or end_of_word_suffix).
const json& check_model_options(const json& j, const std::string& origin) {
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
  return model;
}

// pre_tokenizer: Split steps (appended to `splits`), then ByteLevel, alone or in a Sequence.
void read_pre_tokenizer(const json& j, const std::string& origin, std::vector<std::unique_ptr<Regex>>& splits) {
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
        throw NotImplemented(fmt::format("{}: pre-tokenizer Split with behavior {}{} is not supported (Isolated only)",
                                         origin, s.value("behavior", "?"),
                                         s.value("invert", false) ? ", inverted" : ""));
      const json& p = s.contains("pattern") ? s["pattern"] : json();
      if (p.contains("Regex") && p["Regex"].is_string())
        splits.push_back(std::make_unique<Regex>(p["Regex"].get<std::string>(), false, origin));
      else if (p.contains("String") && p["String"].is_string())
        splits.push_back(std::make_unique<Regex>(p["String"].get<std::string>(), true, origin));
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
}

int32_t vocab_id(const std::unordered_map<std::string, int32_t>& vocab, const std::string& s) {
  auto it = vocab.find(s);
  return it == vocab.end() ? -1 : it->second;
}

// model.merges: "a b" strings or [a, b] pairs, rank = position; both parts and their
// concatenation must be vocabulary tokens.
void read_merges(const json& model, const std::unordered_map<std::string, int32_t>& vocab, const std::string& origin,
                 std::unordered_map<uint64_t, std::pair<int32_t, int32_t>>& merges) {
  if (!model.contains("merges") || !model["merges"].is_array()) return;
  int32_t rank = 0;
  merges.reserve(model["merges"].size());
  for (auto& mg : model["merges"]) {
    std::string a, b;
    if (mg.is_string()) {
      std::string s = mg.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw Error(fmt::format("{}: merge #{} {} is not two tokens separated by one space", origin, rank, mg.dump()));
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      a = mg[0].get<std::string>(), b = mg[1].get<std::string>();
    } else {
      throw Error(fmt::format("{}: merge #{} is malformed", origin, rank));
    }
    int32_t ia = vocab_id(vocab, a), ib = vocab_id(vocab, b), iab = vocab_id(vocab, a + b);
    if (ia < 0 || ib < 0 || iab < 0)
      throw Error(fmt::format("{}: merge #{} ({} {}) uses a token that is not in the vocabulary", origin, rank, a, b));
    merges[tokenizer_detail::merge_key(ia, ib)] = {rank, iab};  // a repeat: the last wins
    ++rank;
  }
}

}  // namespace

void Tokenizer::Impl::read_components(const json& j, const std::string& origin) {
  check_model_options(j, origin);
  // normalizer, pre-tokenizer, post-processor, decoder: an unsupported component is named before
  // the contents are checked
  if (j.contains("normalizer")) check_identity_normalizer(j["normalizer"], origin);
  read_pre_tokenizer(j, origin, splits);
  if (j.contains("post_processor")) check_post_processor(j["post_processor"], origin);
  const json& dec = j.contains("decoder") ? j["decoder"] : json();
  if (!dec.is_null()) {
    if (type_of(dec) != "ByteLevel")
      throw NotImplemented(fmt::format("{}: decoder {} is not supported (ByteLevel or null)", origin, type_of(dec)));
    byte_level_decoder = true;
  }
}

void Tokenizer::Impl::read_model(const json& model, const std::string& origin, int32_t& max_id) {
  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw Error(fmt::format("{}: model.vocab missing", origin));
  ignore_merges = model.value("ignore_merges", false);
  fuse_unk = model.value("fuse_unk", false);
  vocab.reserve(model["vocab"].size());
  for (auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
      throw Error(fmt::format("{}: vocab entry {} has a bad id", origin, tok));
    vocab[tok] = id.get<int32_t>();
    max_id = std::max(max_id, id.get<int32_t>());
  }
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    unk_id = vocab_id(vocab, model["unk_token"].get<std::string>());
    if (unk_id < 0)
      throw Error(fmt::format("{}: unk_token {} is not in the vocabulary", origin, model["unk_token"].dump()));
  }
  read_merges(model, vocab, origin, merges);
  const tokenizer_detail::ByteMap& bm = tokenizer_detail::byte_map();
  for (int b = 0; b < 256; ++b) byte_id[b] = vocab_id(vocab, bm.byte_str[b]);
}

void Tokenizer::Impl::read_added_tokens(const json& j, const std::string& origin, int32_t& max_id) {
  if (!j.contains("added_tokens") || j["added_tokens"].is_null()) return;
  if (!j["added_tokens"].is_array()) throw Error(fmt::format("{}: \"added_tokens\" is not a list", origin));
  for (auto& a : j["added_tokens"]) {
    if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string() ||
        !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24))
      throw Error(fmt::format("{}: added token {} lacks a valid id or content", origin, a.dump()));
    AddedToken at{a["content"].get<std::string>(), a["id"].get<int32_t>(),
                  a.value("special", false),       a.value("normalized", !a.value("special", false)),
                  a.value("lstrip", false),        a.value("rstrip", false),
                  a.value("single_word", false)};
    if (at.content.empty() || added_id.count(at.content)) continue;  // tokenizers ignores these too
    if (int32_t v = vocab_id(vocab, at.content); v >= 0 && v != at.id)
      throw Error(fmt::format("{}: added token {} has id {} but the vocabulary gives it {}", origin,
                              a["content"].dump(), at.id, v));
    added_id.emplace(at.content, at.id);
    if (at.special) special_contents.insert(at.content);
    added.push_back(at);
    max_id = std::max(max_id, at.id);
  }
}

void Tokenizer::Impl::build_tables(int32_t max_id) {
  // tokenizers' tries hold the special tokens first, then the others (the order only matters for equal contents)
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < added.size(); ++i) {
      const AddedToken& a = added[i];
      if (a.special == (pass == 0))
        (a.normalized ? trie_normalized : trie_raw).insert(a.content, static_cast<int32_t>(i));
    }
  id_to_token.assign(max_id + 1, std::string());
  has_token.assign(max_id + 1, false);
  special.assign(max_id + 1, false);
  for (auto& [tok, id] : vocab) id_to_token[id] = tok, has_token[id] = true;
  for (auto& a : added) {
    id_to_token[a.id] = a.content;
    has_token[a.id] = true;
    special[a.id] = a.special;
  }
}

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
    m.read_components(j, origin);
    int32_t max_id = -1;
    m.read_model(j["model"], origin, max_id);
    m.read_added_tokens(j, origin, max_id);
    m.build_tables(max_id);
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: malformed tokenizer.json: {}", origin, e.what()));
  }
  return t;
}

}  // namespace dsocr

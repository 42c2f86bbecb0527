#include "ocr/openai_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "ocr/inputs.h"

namespace dsocr {
namespace {
using ojson = nlohmann::ordered_json;

const char* error_type(int status) {
  if (status == 401) return "authentication_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

ApiError bad_request(const std::string& message, const std::string& code = "invalid_request") {
  return ApiError(400, code, message);
}

int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string printable(unsigned char c) {
  return c >= 0x20 && c < 0x7f ? fmt::format("'{}'", static_cast<char>(c)) : fmt::format("byte 0x{:02x}", c);
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}

bool jpeg_size(const std::vector<uint8_t>& b, int64_t& width, int64_t& height) {
  size_t i = 2;  // after SOI (FF D8)
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return false;
    while (i < b.size() && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= b.size()) return false;
    const uint8_t m = b[i++];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // markers without a length
    if (m == 0xD9 || m == 0xDA) return false;             // end of image, start of scan: no frame header
    if (i + 2 > b.size()) return false;
    const size_t len = (size_t{b[i]} << 8) | b[i + 1];
    if (len < 2) return false;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (i + 7 > b.size() || len < 7) return false;
      height = (int64_t{b[i + 3]} << 8) | b[i + 4];
      width = (int64_t{b[i + 5]} << 8) | b[i + 6];
      return true;
    }
    i += len;
  }
  return false;
}

// The text of a message's content: a string, or the text parts of a list; the image_url parts'
// URLs go to urls.
std::string content_text(const nlohmann::json& content, std::vector<std::string>& urls) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw bad_request("messages[].content must be a string or a list of content parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      throw bad_request("each content part must be an object with a \"type\"");
    const std::string type = part["type"].get<std::string>();
    if (type == "text") {
      if (!part.contains("text") || !part["text"].is_string())
        throw bad_request("a text content part needs \"text\" (a string)");
      if (!text.empty()) text += "\n";
      text += part["text"].get<std::string>();
    } else if (type == "image_url") {
      const auto& iu = part.contains("image_url") ? part["image_url"] : nlohmann::json();
      if (iu.is_string())
        urls.push_back(iu.get<std::string>());
      else if (iu.is_object() && iu.contains("url") && iu["url"].is_string())
        urls.push_back(iu["url"].get<std::string>());
      else
        throw bad_request("an image_url content part needs \"image_url\": {\"url\": \"data:...\"}");
    } else {
      throw bad_request(fmt::format("content part type '{}' is not supported (text and image_url are)", type));
    }
  }
  return text;
}

int64_t positive_integer(const nlohmann::json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return 0;
  const auto& v = body[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    throw bad_request(fmt::format("{} must be a positive integer", key));
  return v.get<int64_t>();
}

bool boolean(const nlohmann::json& obj, const char* key) {
  if (!obj.contains(key) || obj[key].is_null()) return false;
  if (!obj[key].is_boolean()) throw bad_request(fmt::format("{} must be true or false", key));
  return obj[key].get<bool>();
}

// The one user message's text and image URLs; system and developer messages are skipped.
std::string user_message(const nlohmann::json& body, std::vector<std::string>& urls) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    throw bad_request("\"messages\" must be a non-empty list");
  std::string text;
  int users = 0;
  for (const auto& m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad_request("each message must be an object with a \"role\"");
    const std::string role = m["role"].get<std::string>();
    if (role == "system" || role == "developer") continue;
    if (role != "user")
      throw bad_request(fmt::format(
          "a message with role '{}': dsocr reads one page per request (one user message, no conversation)", role));
    if (++users > 1) throw bad_request("more than one user message: send one user message with one image");
    if (!m.contains("content")) throw bad_request("the user message has no \"content\"");
    text = content_text(m["content"], urls);
  }
  if (users == 0) throw bad_request("no user message: send one user message with one image");
  return text;
}

}  // namespace

ojson api_error_json(int status, const std::string& code, const std::string& message) {
  return {{"error", {{"message", message}, {"type", error_type(status)}, {"param", nullptr}, {"code", code}}}};
}

std::vector<uint8_t> base64_decode(std::string_view s) {
  std::vector<uint8_t> out;
  out.reserve(s.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0, n = 0, pad = 0;  // n: data characters; pad: '=' seen
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const int v = base64_value(c);
    if (v < 0) throw Error(fmt::format("invalid base64: {} at offset {}", printable(c), i));
    if (pad) throw Error(fmt::format("invalid base64: data after '=' padding at offset {}", i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++n;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  if (n % 4 == 1) throw Error(fmt::format("invalid base64: truncated ({} characters, one too many or too few)", n));
  if (pad && (pad > 2 || (n + pad) % 4 != 0))
    throw Error(fmt::format("invalid base64: {} '=' after {} characters", pad, n));
  return out;
}

std::vector<uint8_t> decode_data_url(const std::string& url) {
  if (lower(url.substr(0, 5)) != "data:") {
    const std::string scheme = url.substr(0, url.find(':'));
    throw bad_request(
        fmt::format("image_url: only data: URLs are taken (data:image/png;base64,...); the server fetches nothing ({})",
                    scheme.size() < 16 ? scheme + ": URL" : "not a URL"));
  }
  const size_t comma = url.find(',');
  if (comma == std::string::npos) throw bad_request("image_url: a data: URL without ',' before its data");
  const std::string meta = lower(url.substr(5, comma - 5));
  const size_t b64 = meta.rfind(";base64");
  if (b64 == std::string::npos || b64 + 7 != meta.size())
    throw bad_request("image_url: the data: URL must be base64 (data:image/png;base64,...)");
  const std::string type = meta.substr(0, std::min(meta.find(';'), b64));
  if (!type.empty() && type.rfind("image/", 0) != 0 && type != "application/octet-stream")
    throw bad_request(fmt::format("image_url: a data: URL of type {}, not an image", type));
  try {
    return base64_decode(std::string_view(url).substr(comma + 1));
  } catch (const Error& e) {
    throw ApiError(400, "invalid_base64", std::string("image_url: ") + e.what());
  }
}

bool image_header_size(const std::vector<uint8_t>& b, int64_t& width, int64_t& height) {
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (b.size() >= 24 && std::equal(png, png + 8, b.begin()) && std::equal(b.begin() + 12, b.begin() + 16, "IHDR")) {
    width = be32(b, 16);
    height = be32(b, 20);
    return true;
  }
  if (b.size() >= 4 && b[0] == 0xFF && b[1] == 0xD8) return jpeg_size(b, width, height);
  return false;
}

RgbImage decode_request_image(const std::vector<uint8_t>& bytes, int64_t max_pixels) {
  std::string what;
  const InputKind kind = sniff_format(bytes, &what);
  if (kind == InputKind::pdf)
    throw ApiError(400, "invalid_image", "the image is a PDF: send each page as a PNG or JPEG image");
  if (kind == InputKind::unsupported)
    throw ApiError(400, "invalid_image", fmt::format("the image is not a PNG or JPEG ({})", what));
  auto too_large = [&](int64_t w, int64_t h) {
    return ApiError(413, "image_too_large",
                    fmt::format("the image is {}x{} = {} pixels, over this server's limit of {} (--max-image-pixels)",
                                w, h, w * h, max_pixels));
  };
  int64_t w = 0, h = 0;
  if (image_header_size(bytes, w, h) && w * h > max_pixels) throw too_large(w, h);
  RgbImage img;
  try {
    img = decode_image(bytes, "image");
  } catch (const Error& e) {
    throw ApiError(400, "invalid_image", e.what());
  }
  if (int64_t{img.width} * img.height > max_pixels) throw too_large(img.width, img.height);
  return img;
}

std::string chat_prompt(const std::string& text, const std::string& default_prompt) {
  static const std::string tag = "<image>";
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return default_prompt;
  const size_t at = text.find(tag);
  if (at == std::string::npos) return tag + "\n" + text;
  if (text.find(tag, at + tag.size()) != std::string::npos)
    throw bad_request("the prompt holds <image> more than once (one image per request)");
  return text;
}

ChatRequest parse_chat_request(const std::string& body, const std::string& default_prompt) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at line 1, ..."
    if (size_t at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    throw ApiError(400, "invalid_json", "malformed JSON: " + what);
  }
  if (!j.is_object()) throw bad_request("the body must be a JSON object");
  ChatRequest r;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) throw bad_request("model must be a string");
    r.model = j["model"].get<std::string>();
  }
  if (j.contains("n") && !j["n"].is_null() && j["n"] != 1) throw bad_request("n must be 1 (one answer per request)");
  r.max_tokens = positive_integer(j, "max_completion_tokens");
  if (int64_t m = positive_integer(j, "max_tokens")) r.max_tokens = m;
  r.stream = boolean(j, "stream");
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    if (!j["stream_options"].is_object()) throw bad_request("stream_options must be an object");
    r.include_usage = boolean(j["stream_options"], "include_usage");
  }
  std::vector<std::string> urls;
  const std::string text = user_message(j, urls);
  if (urls.size() != 1)
    throw ApiError(400, "invalid_image_count",
                   urls.empty() ? "no image: send one image_url content part (data:image/png;base64,...)"
                                : fmt::format("{} images: send exactly one image per request", urls.size()));
  r.prompt = chat_prompt(text, default_prompt);
  r.image = decode_data_url(urls[0]);
  return r;
}

ojson usage_json(const ChatAnswer& a) {
  return {{"prompt_tokens", a.prompt_tokens},
          {"completion_tokens", a.completion_tokens},
          {"total_tokens", a.prompt_tokens + a.completion_tokens}};
}

ojson chat_completion_json(const ChatAnswer& a, const std::string& text, const std::string& finish) {
  ojson choice = {{"index", 0},
                  {"message", {{"role", "assistant"}, {"content", text}}},
                  {"logprobs", nullptr},
                  {"finish_reason", finish}};
  return {{"id", a.id},       {"object", "chat.completion"},       {"created", a.created},
          {"model", a.model}, {"choices", ojson::array({choice})}, {"usage", usage_json(a)}};
}

ojson chat_chunk_json(const ChatAnswer& a, const ojson& delta, const std::string& finish) {
  ojson choice = {{"index", 0},
                  {"delta", delta},
                  {"logprobs", nullptr},
                  {"finish_reason", finish.empty() ? ojson(nullptr) : ojson(finish)}};
  return {{"id", a.id},
          {"object", "chat.completion.chunk"},
          {"created", a.created},
          {"model", a.model},
          {"choices", ojson::array({choice})}};
}

ojson chat_usage_chunk_json(const ChatAnswer& a) {
  return {{"id", a.id},       {"object", "chat.completion.chunk"}, {"created", a.created},
          {"model", a.model}, {"choices", ojson::array()},         {"usage", usage_json(a)}};
}

ojson model_json(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "dsocr"}};
}

ojson models_json(const std::string& id, int64_t created) {
  return {{"object", "list"}, {"data", ojson::array({model_json(id, created)})}};
}

std::string dump_json(const ojson& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace dsocr

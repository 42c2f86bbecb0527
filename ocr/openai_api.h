// The OpenAI chat-completions format of one page, for `dsocr serve` (apps/serve_http.cpp): a
// request's JSON to a prompt and an image, and the JSON of the answers (one chat.completion
// object, or chat.completion.chunk objects for server-sent events), the model list and errors.
// No HTTP here: the transport lives in apps/, so that this part is tested without a socket.
//
// Request (POST /v1/chat/completions):
//   {"model": ID, "messages": [{"role": "user", "content": TEXT | [PART...]}],
//    "max_tokens": N, "stream": BOOL, "stream_options": {"include_usage": BOOL}}
//   PART: {"type": "text", "text": TEXT} | {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}
// Exactly one user message holding exactly one image (a base64 data: URL; nothing is fetched).
// System and developer messages are ignored; assistant and tool messages are refused (the model
// reads one page, it does not chat). Sampling parameters (temperature, top_p, ...) are ignored:
// decoding is greedy. The text parts, joined by newlines, are the prompt (chat_prompt).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/image.h"
#include "runtime/error.h"

namespace dsocr {

// A request the server refuses: the HTTP status, a short machine-readable code and a message.
class ApiError : public Error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : Error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;  // e.g. invalid_json, invalid_image, image_too_large, model_not_found
};

// {"error": {"message", "type", "param": null, "code"}}; type from the status as OpenAI names
// them: authentication_error (401), invalid_request_error (other 4xx), server_error (5xx).
nlohmann::ordered_json api_error_json(int status, const std::string& code, const std::string& message);

// RFC 4648 base64 (standard alphabet). Whitespace is skipped (line-wrapped data); '=' padding is
// optional but, when present, must close the data. Throws Error naming the first bad character
// and its offset.
std::vector<uint8_t> base64_decode(std::string_view s);

// The bytes of a data: URL ("data:[MEDIATYPE][;base64],DATA"). Only base64 data and image (or
// application/octet-stream) media types are taken; other URLs (http, https, files) are refused:
// the server fetches nothing. Throws ApiError 400.
std::vector<uint8_t> decode_data_url(const std::string& url);

// The width and height that a PNG (IHDR) or JPEG (SOFn) header declares, read without decoding
// the pixels; false when the bytes are neither or the header is not found.
bool image_header_size(const std::vector<uint8_t>& bytes, int64_t& width, int64_t& height);

// Decodes a request's image to RGB. ApiError 400 for what is not a PNG or JPEG, or is corrupt
// (with the decoder's message); 413 (image_too_large) over max_pixels, checked on the header
// before anything is decoded.
RgbImage decode_request_image(const std::vector<uint8_t>& bytes, int64_t max_pixels);

// The model prompt of a request's text: text holding "<image>" (once) is used as it is; other
// text gets "<image>\n" in front (as the official task prompts have it: "Free OCR." becomes
// "<image>\nFree OCR."); empty text (or none) gives default_prompt. ApiError 400 for more than
// one "<image>".
std::string chat_prompt(const std::string& text, const std::string& default_prompt);

struct ChatRequest {
  std::string model;           // "" when the request names none
  std::string prompt;          // the model prompt, "<image>" once (chat_prompt)
  std::vector<uint8_t> image;  // the image's bytes as sent (decode_request_image)
  int64_t max_tokens = 0;      // max_tokens or max_completion_tokens; 0 when not given
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
};

// Parses and checks a request body (the format above). ApiError 400 for malformed JSON
// (invalid_json) and for anything the format does not allow, naming the field.
ChatRequest parse_chat_request(const std::string& body, const std::string& default_prompt);

// The answers. finish_reason: "stop" (end of sequence) or "length" (max_tokens or the context).
struct ChatAnswer {
  std::string id, model;
  int64_t created = 0;  // Unix seconds
  int64_t prompt_tokens = 0, completion_tokens = 0;
};
nlohmann::ordered_json usage_json(const ChatAnswer& a);
nlohmann::ordered_json chat_completion_json(const ChatAnswer& a, const std::string& text, const std::string& finish);
// A chat.completion.chunk with one choice: delta (e.g. {"content": "..."}) and finish_reason
// (null when empty).
nlohmann::ordered_json chat_chunk_json(const ChatAnswer& a, const nlohmann::ordered_json& delta,
                                       const std::string& finish = {});
// The last chunk of a stream with stream_options.include_usage: no choice, the usage.
nlohmann::ordered_json chat_usage_chunk_json(const ChatAnswer& a);
// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}.
nlohmann::ordered_json model_json(const std::string& id, int64_t created);
nlohmann::ordered_json models_json(const std::string& id, int64_t created);

// JSON text for an HTTP body: invalid UTF-8 replaced, one line.
std::string dump_json(const nlohmann::ordered_json& j);

}  // namespace dsocr

// The OpenAI chat format of dsocr serve (ocr/openai_api.h), without a socket: base64 and data:
// URLs, image headers and limits, prompts, request parsing with every refusal, and the JSON of
// the answers. The HTTP side is tested end to end by tests/cli/test_serve.sh.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ocr/openai_api.h"
#include "ocr/prompt.h"

using namespace dsocr;

namespace {

std::string src_dir() {
  const char* src = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(src ? src : DSOCR_KERNEL_DIR "/..");
}

std::vector<uint8_t> file_bytes(const std::string& name) {
  std::ifstream f(src_dir() + "/tests/goldens/images/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string base64(const std::vector<uint8_t>& b) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < b.size(); i += 3) {
    uint32_t v =
        uint32_t{b[i]} << 16 | (i + 1 < b.size() ? uint32_t{b[i + 1]} << 8 : 0) | (i + 2 < b.size() ? b[i + 2] : 0);
    out += a[v >> 18];
    out += a[(v >> 12) & 63];
    out += i + 1 < b.size() ? a[(v >> 6) & 63] : '=';
    out += i + 2 < b.size() ? a[v & 63] : '=';
  }
  return out;
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// The ApiError a call throws: "STATUS CODE: message", or "(none)".
template <typename F>
std::string api_error(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return std::to_string(e.status) + " " + e.code + ": " + e.what();
  }
  return "(none)";
}

const std::string kDefault = "<image>\n<|grounding|>Convert the document to markdown.";

// A request body with the given content (a JSON value in text) in one user message.
std::string body_with(const std::string& content, const std::string& extra = {}) {
  return R"({"model": "m", "messages": [{"role": "system", "content": "ignored"}, {"role": "user", "content": )" +
         content + "}]" + extra + "}";
}

std::string image_part(const std::string& url) {
  return R"({"type": "image_url", "image_url": {"url": ")" + url + R"("}})";
}

}  // namespace

TEST(openai_api, base64_decodes_rfc4648_vectors) {
  // RFC 4648 section 10.
  const std::vector<std::pair<std::string, std::string>> cases = {{"", ""},
                                                                  {"Zg==", "f"},
                                                                  {"Zm8=", "fo"},
                                                                  {"Zm9v", "foo"},
                                                                  {"Zm9vYg==", "foob"},
                                                                  {"Zm9vYmE=", "fooba"},
                                                                  {"Zm9vYmFy", "foobar"}};
  for (auto& [in, want] : cases) EXPECT_EQ(base64_decode(in), bytes(want)) << in;
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy\n"), bytes("foobar"));  // line-wrapped
  EXPECT_EQ(base64_decode("Zg"), bytes("f"));                   // padding left out
  EXPECT_EQ(base64_decode("Zm8"), bytes("fo"));
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(255 - i);
  EXPECT_EQ(base64_decode(base64(all)), all);
}

TEST(openai_api, base64_refuses_what_is_not_base64) {
  auto error = [](const std::string& s) {
    try {
      base64_decode(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(none)");
  };
  EXPECT_EQ(error("Zm9v!mFy"), "invalid base64: '!' at offset 4");
  EXPECT_EQ(error("Zm9v\x01"), "invalid base64: byte 0x01 at offset 4");
  EXPECT_EQ(error("Zm9vY"), "invalid base64: truncated (5 characters, one too many or too few)");
  EXPECT_EQ(error("Zg=A"), "invalid base64: data after '=' padding at offset 3");
  EXPECT_EQ(error("Zg="), "invalid base64: 1 '=' after 2 characters");
  EXPECT_EQ(error("Zm9v===="), "invalid base64: 4 '=' after 4 characters");
  EXPECT_EQ(error("Zm9v-_"), "invalid base64: '-' at offset 4");  // the URL-safe alphabet is not taken
}

TEST(openai_api, data_urls) {
  EXPECT_EQ(decode_data_url("data:image/png;base64,Zm9v"), bytes("foo"));
  EXPECT_EQ(decode_data_url("DATA:IMAGE/JPEG;BASE64,Zm9v"), bytes("foo"));
  EXPECT_EQ(decode_data_url("data:;base64,Zm9v"), bytes("foo"));
  EXPECT_EQ(decode_data_url("data:application/octet-stream;base64,Zm9v"), bytes("foo"));
  EXPECT_EQ(api_error([] { decode_data_url("https://example.com/a.png"); }),
            "400 invalid_request: image_url: only data: URLs are taken (data:image/png;base64,...); the server "
            "fetches nothing (https: URL)");
  EXPECT_NE(api_error([] { decode_data_url("data:image/png,rawbytes"); }).find("must be base64"), std::string::npos);
  EXPECT_NE(api_error([] { decode_data_url("data:image/png;base64"); }).find("without ','"), std::string::npos);
  EXPECT_NE(api_error([] { decode_data_url("data:text/plain;base64,Zm9v"); }).find("type text/plain, not an image"),
            std::string::npos);
  EXPECT_EQ(api_error([] { decode_data_url("data:image/png;base64,Zm9v*"); }),
            "400 invalid_base64: image_url: invalid base64: '*' at offset 4");
}

TEST(openai_api, image_headers_and_limits) {
  int64_t w = 0, h = 0;
  ASSERT_TRUE(image_header_size(file_bytes("text_page.png"), w, h));
  EXPECT_EQ(w, 900);
  EXPECT_EQ(h, 1200);
  ASSERT_TRUE(image_header_size(file_bytes("exif_rot6.jpg"), w, h));  // stored 1000x400, shown rotated
  EXPECT_EQ(w * h, 400000);
  EXPECT_FALSE(image_header_size(bytes("hello"), w, h));
  EXPECT_FALSE(image_header_size(bytes("\xff\xd8\xff"), w, h));  // a JPEG cut short

  RgbImage img = decode_request_image(file_bytes("text_page.png"), 1080000);
  EXPECT_EQ(img.width, 900);
  EXPECT_EQ(api_error([] { decode_request_image(file_bytes("text_page.png"), 1079999); }),
            "413 image_too_large: the image is 900x1200 = 1080000 pixels, over this server's limit of 1079999 "
            "(--max-image-pixels)");
  EXPECT_EQ(api_error([] { decode_request_image(file_bytes("exif_rot6.jpg"), 1000); }).substr(0, 20),
            "413 image_too_large:");
  // A PNG header that claims 100000 x 100000 pixels: refused before anything is decoded.
  std::vector<uint8_t> bomb = file_bytes("gradient.png");
  for (int at : {16, 20}) bomb[at] = 0, bomb[at + 1] = 1, bomb[at + 2] = 0x86, bomb[at + 3] = 0xA0;
  EXPECT_EQ(api_error([&] { decode_request_image(bomb, 50'000'000); }).substr(0, 20), "413 image_too_large:");
  EXPECT_EQ(api_error([] { decode_request_image(bytes("hello world"), 100); }).substr(0, 40),
            "400 invalid_image: the image is not a PN");
  EXPECT_NE(api_error([] { decode_request_image(bytes("%PDF-1.4\n"), 100); }).find("is a PDF"), std::string::npos);
  std::vector<uint8_t> cut = file_bytes("text_page.png");
  cut.resize(3000);
  EXPECT_NE(api_error([&] { decode_request_image(cut, 50'000'000); }).find("400 invalid_image: image: corrupt PNG"),
            std::string::npos);
}

TEST(openai_api, prompts) {
  EXPECT_EQ(chat_prompt("Free OCR.", kDefault), task_prompt("free"));
  EXPECT_EQ(chat_prompt("<|grounding|>OCR this image.", kDefault), task_prompt("ocr"));
  EXPECT_EQ(chat_prompt("Locate <|ref|>x<|/ref|> in the image.", kDefault), task_prompt("locate", "x"));
  EXPECT_EQ(chat_prompt("<image>\nFree OCR.", kDefault), "<image>\nFree OCR.");
  EXPECT_EQ(chat_prompt("Read <image> here", kDefault), "Read <image> here");
  EXPECT_EQ(chat_prompt("What is this?", kDefault), "<image>\nWhat is this?");
  EXPECT_EQ(chat_prompt("", kDefault), kDefault);
  EXPECT_EQ(chat_prompt(" \n", kDefault), kDefault);
  EXPECT_NE(api_error([] { chat_prompt("<image><image>", kDefault); }).find("more than once"), std::string::npos);
}

TEST(openai_api, requests_as_the_openai_client_sends_them) {
  const std::string png = "data:image/png;base64," + base64(file_bytes("gradient.png"));
  ChatRequest r = parse_chat_request(
      body_with("[{\"type\": \"text\", \"text\": \"Free OCR.\"}, " + image_part(png) + "]",
                R"(, "max_tokens": 8, "stream": true, "stream_options": {"include_usage": true}, "temperature": 0)"),
      kDefault);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt, "<image>\nFree OCR.");
  EXPECT_EQ(r.image, file_bytes("gradient.png"));
  EXPECT_EQ(r.max_tokens, 8);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  // No text: the default prompt; image_url as a bare string; max_completion_tokens.
  r = parse_chat_request(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": ")" + png +
                             R"("}]}], "max_completion_tokens": 5})",
                         kDefault);
  EXPECT_EQ(r.model, "");
  EXPECT_EQ(r.prompt, kDefault);
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_FALSE(r.stream);
}

TEST(openai_api, requests_refused) {
  const std::string png = image_part("data:image/png;base64," + base64(file_bytes("gradient.png")));
  auto refused = [](const std::string& body) { return api_error([&] { parse_chat_request(body, kDefault); }); };
  EXPECT_EQ(refused("{\"messages\": [").substr(0, 30), "400 invalid_json: malformed JS");
  EXPECT_EQ(refused("[1, 2]"), "400 invalid_request: the body must be a JSON object");
  EXPECT_EQ(refused("{}"), "400 invalid_request: \"messages\" must be a non-empty list");
  EXPECT_EQ(refused(body_with("\"Free OCR.\"")),
            "400 invalid_image_count: no image: send one image_url content part (data:image/png;base64,...)");
  EXPECT_EQ(refused(body_with(std::string("[") + png + ", " + png + "]")),
            "400 invalid_image_count: 2 images: send exactly one image per request");
  EXPECT_NE(refused(body_with(std::string("[") + png + "]", R"(, "max_tokens": 0)"))
                .find("max_tokens must be a positive integer"),
            std::string::npos);
  EXPECT_NE(refused(body_with(std::string("[") + png + "]", R"(, "max_tokens": "8")")).find("positive integer"),
            std::string::npos);
  EXPECT_NE(
      refused(body_with(std::string("[") + png + "]", R"(, "stream": "yes")")).find("stream must be true or false"),
      std::string::npos);
  EXPECT_NE(refused(body_with(std::string("[") + png + "]", R"(, "n": 2)")).find("n must be 1"), std::string::npos);
  EXPECT_NE(refused(body_with(std::string("[") + png + "]", R"(, "model": 3)")).find("model must be a string"),
            std::string::npos);
  EXPECT_NE(refused(body_with("[{\"type\": \"input_audio\"}]")).find("'input_audio' is not supported"),
            std::string::npos);
  EXPECT_NE(refused(body_with("[{\"type\": \"image_url\"}]")).find("needs \"image_url\""), std::string::npos);
  EXPECT_NE(refused(body_with("42")).find("must be a string or a list"), std::string::npos);
  EXPECT_NE(
      refused(R"({"messages": [{"role": "user", "content": [)" + png + R"(]}, {"role": "assistant", "content": "x"}]})")
          .find("role 'assistant'"),
      std::string::npos);
  EXPECT_NE(refused(R"({"messages": [{"role": "system", "content": "x"}]})").find("no user message"),
            std::string::npos);
  EXPECT_NE(
      refused(body_with(std::string("[") + image_part("data:image/png;base64,@@@@") + "]")).find("400 invalid_base64"),
      std::string::npos);
}

TEST(openai_api, answers_in_the_openai_format) {
  ChatAnswer a{"chatcmpl-1", "m", 1700000000, 81, 8};
  EXPECT_EQ(dump_json(chat_completion_json(a, "hi", "length")),
            R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,)"
            R"("message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"length"}],)"
            R"("usage":{"prompt_tokens":81,"completion_tokens":8,"total_tokens":89}})");
  EXPECT_EQ(dump_json(chat_chunk_json(a, {{"content", "h"}})),
            R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[)"
            R"({"index":0,"delta":{"content":"h"},"logprobs":null,"finish_reason":null}]})");
  const std::string last = dump_json(chat_chunk_json(a, nlohmann::ordered_json::object(), "stop"));
  EXPECT_NE(last.find(R"("delta":{},"logprobs":null,"finish_reason":"stop")"), std::string::npos) << last;
  const std::string usage = dump_json(chat_usage_chunk_json(a));
  EXPECT_NE(usage.find(R"("choices":[],"usage":{"prompt_tokens":81,"completion_tokens":8,"total_tokens":89})"),
            std::string::npos)
      << usage;
  EXPECT_EQ(dump_json(models_json("deepseek-ai/DeepSeek-OCR", 5)),
            R"({"object":"list","data":[{"id":"deepseek-ai/DeepSeek-OCR","object":"model","created":5,)"
            R"("owned_by":"dsocr"}]})");
  EXPECT_EQ(dump_json(api_error_json(404, "model_not_found", "no")),
            R"({"error":{"message":"no","type":"invalid_request_error","param":null,"code":"model_not_found"}})");
  EXPECT_EQ(api_error_json(401, "invalid_api_key", "k")["error"]["type"], "authentication_error");
  EXPECT_EQ(api_error_json(503, "queue_full", "q")["error"]["type"], "server_error");
  EXPECT_EQ(dump_json(chat_completion_json(a, std::string("bad \xff utf-8"), "stop")).find("\xff"), std::string::npos);
}

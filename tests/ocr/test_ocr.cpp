// The OCR pipeline above the model (ocr/): task prompts, prompt ids against the goldens'
// input_ids, one page end to end against the golden generation (tiny checkpoint), the page
// pipeline call (ocr/pipeline.h) in each output format, streaming detokenisation, and the JSON of
// a page. Grounding, markdown, inputs, PDF, drawing and the model lookup: ocr_documents.cpp.
#include "ocr_test_util.h"

using namespace ocr_test;

// ------------------------------------------------------------------ prompts
TEST(ocr, task_prompts_are_the_official_ones) {
  EXPECT_EQ(task_prompt("markdown"), "<image>\n<|grounding|>Convert the document to markdown.");
  EXPECT_EQ(task_prompt("ocr"), "<image>\n<|grounding|>OCR this image.");
  EXPECT_EQ(task_prompt("free"), "<image>\nFree OCR.");
  EXPECT_EQ(task_prompt("figure"), "<image>\nParse the figure.");
  EXPECT_EQ(task_prompt("describe"), "<image>\nDescribe this image in detail.");
  EXPECT_EQ(task_prompt("locate", "the red car"), "<image>\nLocate <|ref|>the red car<|/ref|> in the image.");
  EXPECT_EQ(ocr_tasks().size(), 6u);
  EXPECT_NE(error_of([] { task_prompt("locate"); }).find("--ref"), std::string::npos);
  EXPECT_NE(error_of([] { task_prompt("free", "x"); }).find("only used by --task locate"), std::string::npos);
  EXPECT_NE(error_of([] { task_prompt("poem"); }).find("unknown task 'poem'"), std::string::npos);
}

TEST(ocr, prompt_ids_match_the_goldens) {
  // (golden, prompt): the generate and logits goldens were written with these official prompts.
  for (auto [name, prompt] :
       std::vector<std::pair<std::string, std::string>>{{"model_generate_image_tiny_ngram3", task_prompt("free")},
                                                        {"model_generate_image_base_ngram30", task_prompt("ocr")},
                                                        {"model_logits_image_tiny", task_prompt("markdown")}}) {
    GoldenCase c = read_golden(golden(name));
    auto want = ids_of(c.input("input_ids"));
    int32_t img = tok().token_id("<image>");
    int n = static_cast<int>(std::count(want.begin(), want.end(), img));
    EXPECT_EQ(build_prompt_ids(tok(), prompt, n, 0, img), want) << name;
  }
}

TEST(ocr, prompt_ids_layout_and_errors) {
  int32_t img = tok().token_id("<image>");
  ASSERT_GE(img, 0);
  auto ids = build_prompt_ids(tok(), "ab<image>cd", 3, 0, img);
  auto a = tok().encode("ab"), b = tok().encode("cd");
  std::vector<int32_t> want{0};
  want.insert(want.end(), a.begin(), a.end());
  want.insert(want.end(), 3, img);
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(ids, want);
  EXPECT_NE(error_of([&] { build_prompt_ids(tok(), "no image", 3, 0, img); }).find("no <image>"), std::string::npos);
  EXPECT_NE(error_of([&] { build_prompt_ids(tok(), "<image><image>", 3, 0, img); }).find("more than one"),
            std::string::npos);
}

// ------------------------------------------------------------------ one page end to end
TEST(ocr, page_matches_golden_generation) {
  GoldenCase c = read_golden(golden("model_generate_image_tiny_ngram3"));
  ASSERT_EQ(c.attr_str("mode", ""), "tiny");
  OcrOptions o;
  o.mode = "tiny";
  o.max_new_tokens = c.attr_int("max_new_tokens");
  o.ngram_size = static_cast<int>(c.attr_int("ngram_size"));
  o.ngram_window = static_cast<int>(c.attr_int("ngram_window"));
  auto wl = c.attr_ints("ngram_whitelist", {});
  EXPECT_EQ(std::vector<int32_t>(wl.begin(), wl.end()), engine().ngram_whitelist);
  RgbImage im = load_image(image_path("text_page.png"));
  std::vector<int32_t> streamed;
  PageResult r = ocr_image(rt(), engine(), im, task_prompt("free"), o, [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(r.prompt_ids, ids_of(c.input("input_ids")));
  EXPECT_EQ(r.generated, ids_of(c.outputs.at("tokens")));
  EXPECT_EQ(streamed, r.generated);
  EXPECT_EQ(r.n_image_tokens, 73);
  EXPECT_EQ(r.width, 900);
  EXPECT_EQ(r.height, 1200);
  bool eos = !r.generated.empty() && r.generated.back() == engine().eos_id;
  EXPECT_EQ(r.eos, eos);
  std::vector<int32_t> body(r.generated.begin(), r.generated.end() - (eos ? 1 : 0));
  EXPECT_EQ(r.text, tok().decode(body));
}

// Building and loading kernel programs is counted in compile_s and kept out of the stage times.
// run_page (ocr/pipeline.h), the call dsocr ocr and a server share: the same generation in every
// format; text and markdown streamed piece by piece add up to what it returns; json one object.
TEST(ocr, page_pipeline_in_each_format) {
  GoldenCase c = read_golden(golden("model_generate_image_tiny_ngram3"));
  TempDir dir;
  PageRequest req;
  req.prompt = task_prompt("free");
  req.opts.mode = "tiny";
  req.opts.max_new_tokens = c.attr_int("max_new_tokens");
  req.opts.ngram_size = static_cast<int>(c.attr_int("ngram_size"));
  req.opts.ngram_window = static_cast<int>(c.attr_int("ngram_window"));
  req.out_dir = dir / "out";
  req.source = "text_page.png";
  RgbImage im = load_image(image_path("text_page.png"));
  const auto want = ids_of(c.outputs.at("tokens"));
  for (OutputFormat f : {OutputFormat::text, OutputFormat::markdown, OutputFormat::json}) {
    SCOPED_TRACE(output_format_name(f));
    req.format = f;
    std::string streamed;
    int64_t tokens = 0;
    PageEvents ev;
    ev.text = [&](const std::string& s) { streamed += s; };
    ev.token = [&](int64_t n, int32_t) { tokens = n; };
    int crops = 0;
    PageOutput po = run_page(rt(), engine(), im, req, crops, ev);
    EXPECT_EQ(po.result.generated, want);
    EXPECT_EQ(tokens, static_cast<int64_t>(want.size()));
    EXPECT_EQ(streamed, po.text);
    if (f == OutputFormat::text) {
      EXPECT_EQ(po.text, po.result.text);
      EXPECT_TRUE(po.json.empty());
    } else if (f == OutputFormat::markdown) {
      EXPECT_EQ(po.text, postprocess_markdown(po.result.text));
    } else {
      EXPECT_TRUE(po.text.empty());
      auto j = nlohmann::json::parse(po.json);
      EXPECT_EQ(j["text"], po.result.text);
      EXPECT_EQ(j["markdown"], po.markdown);
      EXPECT_EQ(j["source"], "text_page.png");
      EXPECT_EQ(j["generated_ids"], nlohmann::json(want));
    }
    EXPECT_EQ(po.boxes.size(), pixel_boxes(po.result.text, im.width, im.height).size());
  }
  EXPECT_EQ(output_format_from_string("json"), OutputFormat::json);
  EXPECT_NE(error_of([] { output_format_from_string("html"); }).find("unknown output format 'html'"),
            std::string::npos);
}

TEST(ocr, compile_time_is_kept_out_of_the_stage_times) {
  RuntimeOptions ro;
  ro.device = std::to_string(rt().device().index);
  Runtime fresh(ro);  // nothing memoised: every program is built or loaded from the disk cache
  fresh.programs().set_build_observer([&](const BuildEvent& e) {
    if (!e.done) fresh.finish();
  });
  OcrEngine e = load_engine(fresh, ckpt_dir());
  OcrOptions o;
  o.mode = "tiny";
  o.max_new_tokens = 4;
  RgbImage im = load_image(image_path("gradient.png"));
  const double before = fresh.programs().stats().seconds;
  auto t0 = std::chrono::steady_clock::now();
  PageResult first = ocr_image(fresh, e, im, task_prompt("free"), o);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(first.t.compile_s, 0.0);
  EXPECT_NEAR(first.t.compile_s, fresh.programs().stats().seconds - before, 1e-9);
  const PageTimings& t = first.t;
  EXPECT_LE(t.preprocess_s + t.vision_s + t.prefill_s + t.decode_s + t.compile_s, wall + 1e-3);
  PageResult second = ocr_image(fresh, e, im, task_prompt("free"), o);
  EXPECT_EQ(second.t.compile_s, 0.0);  // every program memoised now
  EXPECT_EQ(second.generated, first.generated);
}

TEST(ocr, modes) {
  OcrOptions o;
  EXPECT_EQ(effective_mode(o), "gundam");
  o.crop = false;  // --no-crop: gundam's global view alone is base mode's view
  EXPECT_EQ(effective_mode(o), "base");
  EXPECT_EQ(image_token_count("gundam", 1, 1, 0), image_token_count("base", 1, 1, 0));
  o.mode = "tiny";
  EXPECT_EQ(effective_mode(o), "tiny");
  o.mode = "huge";
  EXPECT_NE(error_of([&] { effective_mode(o); }).find("unknown mode"), std::string::npos);
}

TEST(ocr, max_new_tokens_is_capped_by_the_context) {
  OcrOptions o;
  o.mode = "tiny";
  o.max_new_tokens = 1 << 20;  // far past the 8192-token context
  o.ngram_size = 0;
  RgbImage im = load_image(image_path("gradient.png"));
  // Uncapped, generate() would refuse before the first token; the callback stops it after one.
  struct Stop {};
  bool stopped = false;
  try {
    ocr_image(rt(), engine(), im, task_prompt("free"), o, [](int32_t) { throw Stop{}; });
  } catch (const Stop&) {
    stopped = true;
  }
  EXPECT_TRUE(stopped);
  // a prompt that fills the context is refused with a clear message
  std::string longp = "<image>";
  for (int i = 0; i < 9000; ++i) longp += " a";
  EXPECT_NE(error_of([&] { ocr_image(rt(), engine(), im, longp, o); }).find("fills the model's context"),
            std::string::npos);
}

// ------------------------------------------------------------------ streaming text
TEST(ocr, text_stream_equals_decode_and_holds_partial_utf8) {
  std::vector<std::string> texts = {"The quick brown fox.", "深度求索发布了光学字符识别模型。日本語のテキスト",
                                    "Emoji 😀, Greek Ελληνικά, ±×÷→≤≥∞", "<|ref|>title<|/ref|><|det|>[[1, 2, 3, 4]]"};
  for (auto& t : texts) {
    auto ids = tok().encode(t);
    TextStream s(tok());
    std::string all;
    for (auto id : ids) {
      std::string piece = s.push(id);
      EXPECT_EQ(sanitize_utf8(piece), piece) << "a piece with broken UTF-8 for " << t;
      all += piece;
    }
    all += s.flush();
    EXPECT_EQ(all, tok().decode(ids));
    EXPECT_EQ(all, t);
  }
  // random ids, including special tokens and lone byte tokens
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<int32_t> ids;
    for (int k = 0; k < 40; ++k) ids.push_back(static_cast<int32_t>(rng() % tok().vocab_size()));
    TextStream s(tok());
    std::string all;
    for (auto id : ids) all += s.push(id);
    all += s.flush();
    EXPECT_EQ(all, tok().decode(ids)) << "trial " << trial;
  }
}


// ------------------------------------------------------------------ JSON
TEST(ocr, page_json_fields) {
  PageResult r;
  r.width = 10;
  r.height = 20;
  r.mode = "tiny";
  r.n_image_tokens = 73;
  r.prompt_ids = {0, 5, 6};
  r.generated = {7, 8, 1};
  r.eos = true;
  r.text = "ab";
  r.t.decode_s = 0.5;
  PageReport rep{"p.pdf",          2,  "<image>\nFree OCR.", "ab", {{"title", {1, 2, 3, 4}, {5, 6, 7, 8}}},
                 {"images/0.jpg"}, 1.5};
  auto j = page_json(r, rep);
  EXPECT_EQ(j["source"], "p.pdf");
  EXPECT_EQ(j["page"], 2);
  EXPECT_EQ(j["text"], "ab");
  EXPECT_EQ(j["markdown"], "ab");
  EXPECT_EQ(j["boxes"][0]["label"], "title");
  EXPECT_EQ(j["boxes"][0]["box"], nlohmann::json({1, 2, 3, 4}));
  EXPECT_EQ(j["tokens"]["prompt"], 3);
  EXPECT_EQ(j["tokens"]["image"], 73);
  EXPECT_EQ(j["tokens"]["generated"], 3);
  EXPECT_EQ(j["generated_ids"], nlohmann::json({7, 8, 1}));
  EXPECT_EQ(j["stop"], "eos");
  EXPECT_DOUBLE_EQ(j["timings"]["decode_tok_s"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(j["timings"]["load_s"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["timings"]["compile_s"].get<double>(), 0.0);
  rep.page = 0;
  EXPECT_TRUE(page_json(r, rep)["page"].is_null());
}

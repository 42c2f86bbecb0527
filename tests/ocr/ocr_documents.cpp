// Part of the test_ocr executable: grounding tags and boxes, the markdown post-processing
// (streamed == batch == a std::regex reference), crops, inputs and page lists, PDF rendering,
// drawing and image writing, and the Hugging Face cache lookup.
#include "ocr_test_util.h"

using namespace ocr_test;

// ------------------------------------------------------------------ grounding
TEST(ocr, find_refs_follows_the_official_regex) {
  std::string t =
      "<|ref|>title<|/ref|><|det|>[[10, 20, 300, 40]]<|/det|>\n# Hello\n"
      "<|ref|>image<|/ref|><|det|>[[0,0,999,999], [1, 2, 3, 4]]<|/det|>\n"
      "<|ref|>multi\nline<|/ref|><|det|>[[5,6,7,8]]<|/det|>tail <|ref|>open";
  auto m = find_refs(t);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].label, "title");
  EXPECT_EQ(m[0].det, "[[10, 20, 300, 40]]");
  EXPECT_TRUE(m[0].det_ok);
  ASSERT_EQ(m[0].boxes.size(), 1u);
  EXPECT_EQ(m[0].boxes[0], (Box999{10, 20, 300, 40}));
  EXPECT_EQ(t.substr(m[0].begin, m[0].end - m[0].begin), "<|ref|>title<|/ref|><|det|>[[10, 20, 300, 40]]<|/det|>");
  EXPECT_EQ(m[1].boxes.size(), 2u);
  EXPECT_EQ(m[2].label, "multi\nline");  // DOTALL
  // non-greedy: the first <|/ref|><|det|> and the first <|/det|> after it
  auto n = find_refs("<|ref|>a<|/ref|>b<|/ref|><|det|>[[1,2,3,4]]<|/det|>x<|/det|>");
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].label, "a<|/ref|>b");
  EXPECT_EQ(n[0].det, "[[1,2,3,4]]");
  // the first group may swallow a later <|ref|> (as re.findall does)
  auto k = find_refs("<|ref|>x <|ref|>y<|/ref|><|det|>[]<|/det|>");
  ASSERT_EQ(k.size(), 1u);
  EXPECT_EQ(k[0].label, "x <|ref|>y");
  EXPECT_TRUE(find_refs("<|ref|>a<|/ref|> <|det|>[[1,2,3,4]]<|/det|>").empty());
}

TEST(ocr, parse_det_as_python_eval) {
  std::vector<Box999> b;
  EXPECT_TRUE(parse_det("[[1, 2, 3, 4]]", b));
  EXPECT_EQ(b, (std::vector<Box999>{{1, 2, 3, 4}}));
  EXPECT_TRUE(parse_det(" [ [1,2,3,4] , [5.5, 6e1, -7, +8], ] ", b));
  EXPECT_EQ(b, (std::vector<Box999>{{1, 2, 3, 4}, {5.5, 60, -7, 8}}));
  EXPECT_TRUE(parse_det("[1, 2, 3, 4]", b));  // a flat box is accepted
  EXPECT_EQ(b.size(), 1u);
  EXPECT_TRUE(parse_det("[]", b));
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(parse_det("[[1,2,3], [1,2,3,4,5], [9,9,9,9]]", b));  // boxes of other sizes are skipped
  EXPECT_EQ(b, (std::vector<Box999>{{9, 9, 9, 9}}));
  EXPECT_FALSE(parse_det("[[1, 2, 3, 4]", b));
  EXPECT_FALSE(parse_det("[[1, 2, 3, 4]] x", b));
  EXPECT_FALSE(parse_det("[[a, 2, 3, 4]]", b));
  EXPECT_FALSE(parse_det("[[012, 2, 3, 4]]", b));  // Python 3 rejects leading zeros
  EXPECT_TRUE(parse_det("[[00, 0.5, 3, 4]]", b));
  EXPECT_FALSE(parse_det("", b));
  EXPECT_FALSE(parse_det("[[1,,2]]", b));
}

TEST(ocr, boxes_scale_as_int_of_c_over_999) {
  EXPECT_EQ(scale_box({0, 0, 999, 999}, 900, 1200), (std::array<int, 4>{0, 0, 900, 1200}));
  // int(500/999*900) = int(450.45...) = 450; int(333/999*1200) = int(400.0) = 400
  EXPECT_EQ(scale_box({500, 333, 998, 1}, 900, 1200), (std::array<int, 4>{450, 400, 899, 1}));
  EXPECT_EQ(scale_box({-1, -2, 1e30, 3}, 900, 1200)[0], 0);  // truncation towards zero
  EXPECT_EQ(scale_box({-2, -2, 1e30, 3}, 900, 1200)[0], -1);
  EXPECT_EQ(scale_box({-2, -2, 1e30, 3}, 900, 1200)[2], 2000000000);
  auto pb = pixel_boxes("<|ref|>text<|/ref|><|det|>[[100,100,200,200],[0,0,999,999]]<|/det|>", 999, 1998);
  ASSERT_EQ(pb.size(), 2u);
  EXPECT_EQ(pb[0].label, "text");
  EXPECT_EQ(pb[0].px, (std::array<int, 4>{100, 200, 200, 400}));
  EXPECT_EQ(pb[1].grid, (Box999{0, 0, 999, 999}));
}

// ------------------------------------------------------------------ markdown
namespace {
// The official script, with std::regex for the regex: findall, then replace image matches by a
// link and delete the others, then the two LaTeX replacements.
std::string reference_markdown(const std::string& text) {
  std::regex re(R"((<\|ref\|>([\s\S]*?)<\|/ref\|><\|det\|>([\s\S]*?)<\|/det\|>))");
  std::string out;
  int k = 0;
  auto it = std::sregex_iterator(text.begin(), text.end(), re);
  size_t pos = 0;
  for (; it != std::sregex_iterator(); ++it) {
    auto& m = *it;
    out += text.substr(pos, m.position(0) - pos);
    if (m.str(0).find("<|ref|>image<|/ref|>") != std::string::npos) out += fmt::format("<IMG{}>", k++);
    pos = m.position(0) + m.length(0);
  }
  out += text.substr(pos);
  for (auto [from, to] : {std::pair<std::string, std::string>{"\\coloneqq", ":="}, {"\\eqqcolon", "=:"}})
    for (size_t i = 0; (i = out.find(from, i)) != std::string::npos; i += to.size()) out.replace(i, from.size(), to);
  return out;
}
}  // namespace

TEST(ocr, markdown_postprocessing_streamed_equals_batch_equals_reference) {
  std::vector<std::string> texts = {
      "<|ref|>title<|/ref|><|det|>[[10, 20, 300, 40]]<|/det|>\n# Title\n\n"
      "<|ref|>text<|/ref|><|det|>[[10, 50, 900, 200]]<|/det|>\nBody with $a \\coloneqq b$ and $c \\eqqcolon d$.\n\n"
      "<|ref|>image<|/ref|><|det|>[[100, 300, 600, 800]]<|/det|>\n\n"
      "<|ref|>table<|/ref|><|det|>[[0,0,1,1]]<|/det|>\n<table><tr><td>1</td></tr></table>\n",
      "no tags at all \\colon \\coloneq \\eqqcolo",
      "<|ref|>image<|/ref|><|det|>[[1,2,3,4]]<|/det|><|ref|>image<|/ref|><|det|>[[5,6,7,8]]<|/det|>",
      "unfinished <|ref|>title<|/ref|><|det|>[[1,2,3,4]] and \\coloneqq",
      "<|ref|><|ref|>image<|/ref|><|det|>[]<|/det|>x<|/det|><|ref|",
      "a \\colo<|ref|>text<|/ref|><|det|>[[1,2,3,4]]<|/det|>neqq b",
      "<|ref|>a<|/ref|>b<|/ref|><|det|>[[1,2,3,4]]<|/det|>x<|/det|>",
  };
  std::mt19937 rng(11);
  for (auto& t : texts) {
    int k = 0;
    auto img = [&](const RefMatch&) { return fmt::format("<IMG{}>", k++); };
    std::string batch = postprocess_markdown(t, img);
    EXPECT_EQ(batch, reference_markdown(t)) << t;
    for (int trial = 0; trial < 30; ++trial) {
      k = 0;
      MarkdownStream s(img);
      std::string out;
      for (size_t i = 0; i < t.size();) {
        size_t n = 1 + rng() % 7;
        out += s.push(t.substr(i, n));
        i += n;
      }
      out += s.flush();
      EXPECT_EQ(out, batch) << "split trial " << trial << " of " << t;
    }
  }
  EXPECT_EQ(postprocess_markdown("x<|ref|>image<|/ref|><|det|>[[1,2,3,4]]<|/det|>y"), "xy");  // no image handler
}

TEST(ocr, markdown_holds_text_only_while_it_may_become_a_tag) {
  MarkdownStream s;
  EXPECT_EQ(s.push("Hello <|re"), "Hello ");
  EXPECT_EQ(s.push("f|>title<|/ref|><|det|>[[1,"), "");
  EXPECT_EQ(s.push("2,3,4]]<|/det|>\n# T"), "\n# T");
  EXPECT_EQ(s.push(" \\colon"), " ");
  EXPECT_EQ(s.push("eqq x"), ":= x");
  EXPECT_EQ(s.flush(), "");
}

TEST(ocr, image_crops_are_saved_and_linked) {
  TempDir d;
  RgbImage page;
  page.width = 200;
  page.height = 100;
  page.rgb.resize(200 * 100 * 3);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 200; ++x)
      for (int c = 0; c < 3; ++c) page.rgb[(y * 200 + x) * 3 + c] = static_cast<uint8_t>(c == 0 ? x : y);
  auto m = find_refs("<|ref|>image<|/ref|><|det|>[[0,0,499,999],[999,999,999,999],[500,0,999,499]]<|/det|>");
  ASSERT_EQ(m.size(), 1u);
  int counter = 3;
  std::vector<std::string> written, skipped;
  std::string rep = save_image_crops(m[0], page, d.path.string(), counter, written, &skipped);
  EXPECT_EQ(rep, "![](images/3.jpg)\n![](images/4.jpg)\n");
  EXPECT_EQ(counter, 5);
  EXPECT_EQ(written, (std::vector<std::string>{"images/3.jpg", "images/4.jpg"}));
  EXPECT_EQ(skipped.size(), 1u);  // the empty box
  RgbImage a = load_image(d / "images/3.jpg"), b = load_image(d / "images/4.jpg");
  EXPECT_EQ(a.width, 99);  // int(499/999*200) = 99
  EXPECT_EQ(a.height, 100);
  EXPECT_EQ(b.width, 100);  // from int(500/999*200) = 100 to 200
  EXPECT_EQ(b.height, 49);
  EXPECT_NEAR(b.at(10, 10, 0), 110, 6);  // red = x of the page
}

// ------------------------------------------------------------------ inputs
TEST(ocr, sniff_formats) {
  auto v = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  std::string what;
  EXPECT_EQ(sniff_format(v("\x89PNG\r\n\x1a\nrest")), InputKind::png);
  EXPECT_EQ(sniff_format(v("\xff\xd8\xff\xe0")), InputKind::jpeg);
  EXPECT_EQ(sniff_format(v("%PDF-1.7\n")), InputKind::pdf);
  EXPECT_EQ(sniff_format(v("junk\n%PDF-1.4\n")), InputKind::pdf);
  EXPECT_EQ(sniff_format(v("GIF89a...."), &what), InputKind::unsupported);
  EXPECT_EQ(what, "GIF");
  EXPECT_EQ(sniff_format({}, &what), InputKind::unsupported);
  EXPECT_EQ(what, "an empty file");
  EXPECT_EQ(sniff_format(v("hello"), &what), InputKind::unsupported);
}

TEST(ocr, page_lists) {
  using V = std::vector<int>;
  int dropped = -1;
  EXPECT_EQ(parse_pages("1-5", 10), (V{1, 2, 3, 4, 5}));
  EXPECT_EQ(parse_pages("3", 10), (V{3}));
  EXPECT_EQ(parse_pages("7-,2,4", 9), (V{2, 4, 7, 8, 9}));
  EXPECT_EQ(parse_pages("-3", 10), (V{1, 2, 3}));
  EXPECT_EQ(parse_pages("2-3,1-2", 10), (V{1, 2, 3}));
  EXPECT_EQ(parse_pages("1-5", 3, &dropped), (V{1, 2, 3}));
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(parse_pages("9", 3, &dropped), V{});
  EXPECT_EQ(dropped, 1);
  for (auto bad : {"", "0", "a", "3-1", "-", "1-2-3", "1,,2", "1.5"})
    EXPECT_NE(error_of([&] { check_pages_spec(bad); }).find("--pages"), std::string::npos) << bad;
  // Each message says its reason once (it used to read "pages count from 1 (... pages count from 1)").
  for (auto bad : {"0", "2,0"}) {
    std::string e = error_of([&] { check_pages_spec(bad); });
    EXPECT_NE(e.find("there is no page 0"), std::string::npos) << e;
    EXPECT_EQ(e.find("count from 1"), e.rfind("count from 1")) << e;
  }
}

TEST(ocr, expand_inputs_lists_folders_sorted) {
  TempDir d;
  for (auto n : {"b.png", "a.JPG", "c.pdf", "notes.txt", "d.jpeg"}) write_text(d / n, "x");
  fs::create_directory(d / "sub.png");  // a folder with an image-like name is not an input
  auto paths = [](const std::vector<InputPath>& in) {
    std::vector<std::string> p;
    for (auto& i : in) p.push_back(i.path);
    return p;
  };
  auto in = expand_inputs({d.path.string(), "-"});
  EXPECT_EQ(paths(in), (std::vector<std::string>{d / "a.JPG", d / "b.png", d / "c.pdf", d / "d.jpeg", "-"}));
  for (auto& i : in) EXPECT_EQ(i.error, "") << i.path;
  // An argument that gives no file is an entry with its error, in its place; the others stay.
  fs::create_directory(d / "empty");
  in = expand_inputs({d / "b.png", d / "missing.png", d / "empty", d / "c.pdf"});
  ASSERT_EQ(paths(in), (std::vector<std::string>{d / "b.png", d / "missing.png", d / "empty", d / "c.pdf"}));
  EXPECT_EQ(in[0].error, "");
  EXPECT_NE(in[1].error.find("does not exist"), std::string::npos) << in[1].error;
  EXPECT_NE(in[2].error.find("holds no PNG, JPEG or PDF"), std::string::npos) << in[2].error;
  EXPECT_EQ(in[3].error, "");
}

// ------------------------------------------------------------------ PDF
TEST(ocr, pdf_pages_render_on_white) {
  std::string pdf = make_pdf({{200, 100, "1 0 0 rg 20 20 60 40 re f"}, {100, 300, "0 0 1 rg 0 0 50 50 re f"}});
  std::vector<uint8_t> bytes(pdf.begin(), pdf.end());
  if (!pdf_supported()) {
    EXPECT_NE(error_of([&] { PdfDocument::open_bytes(bytes, "x.pdf"); }).find("without PDF support"),
              std::string::npos);
    GTEST_SKIP() << "built without poppler-cpp";
  }
  PdfDocument doc = PdfDocument::open_bytes(bytes, "x.pdf");
  ASSERT_EQ(doc.pages(), 2);
  RgbImage p1 = doc.render(1, 72);
  EXPECT_EQ(p1.width, 200);
  EXPECT_EQ(p1.height, 100);
  // PDF y runs upwards: the rectangle x 20..80, y 20..60 is rows 40..80 from the top.
  EXPECT_EQ(p1.at(50, 60, 0), 255);
  EXPECT_EQ(p1.at(50, 60, 1), 0);
  EXPECT_EQ(p1.at(50, 60, 2), 0);
  EXPECT_EQ(p1.at(5, 5, 0), 255);
  EXPECT_EQ(p1.at(5, 5, 1), 255);
  EXPECT_EQ(p1.at(5, 5, 2), 255);
  RgbImage p2 = doc.render(2, 144);
  EXPECT_EQ(p2.width, 200);
  EXPECT_EQ(p2.height, 600);
  EXPECT_EQ(p2.at(10, 590, 2), 255);
  EXPECT_EQ(p2.at(10, 590, 0), 0);
  EXPECT_NE(error_of([&] { doc.render(3, 72); }).find("no page 3"), std::string::npos);
  EXPECT_NE(error_of([&] { doc.render(1, 72, 1000); }).find("too large"), std::string::npos);

  TempDir d;
  write_text(d / "doc.pdf", pdf);
  EXPECT_EQ(PdfDocument::open_file(d / "doc.pdf").pages(), 2);
  std::string junk = "%PDF-1.4\nthis is not a PDF body\n";
  EXPECT_NE(error_of([&] {
              PdfDocument::open_bytes({junk.begin(), junk.end()}, "junk.pdf");
            }).find("junk.pdf: corrupt or unreadable PDF"),
            std::string::npos);
  EXPECT_NE(error_of([&] { PdfDocument::open_file(d / "missing.pdf"); }).find("cannot open"), std::string::npos);
}

// ------------------------------------------------------------------ drawing and writing
TEST(ocr, png_and_jpeg_round_trip) {
  TempDir d;
  RgbImage im;
  im.width = 37;
  im.height = 19;
  for (int i = 0; i < 37 * 19 * 3; ++i) im.rgb.push_back(static_cast<uint8_t>(i * 7));
  write_png(d / "a.png", im);
  RgbImage back = load_image(d / "a.png");
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 19);
  EXPECT_EQ(back.rgb, im.rgb);
  RgbImage flat;
  flat.width = 16;
  flat.height = 8;
  flat.rgb.assign(16 * 8 * 3, 0);
  for (size_t i = 0; i < flat.rgb.size(); i += 3) flat.rgb[i] = 200, flat.rgb[i + 1] = 100, flat.rgb[i + 2] = 50;
  write_jpeg(d / "a.jpg", flat);
  RgbImage j = load_image(d / "a.jpg");
  ASSERT_EQ(j.width, 16);
  EXPECT_NEAR(j.at(3, 3, 0), 200, 4);
  EXPECT_NEAR(j.at(3, 3, 1), 100, 4);
  EXPECT_NEAR(j.at(3, 3, 2), 50, 4);
  EXPECT_NE(error_of([&] { write_png(d / "no/such/dir/x.png", im); }).find("cannot write"), std::string::npos);
  EXPECT_NE(error_of([&] { write_png(d / "e.png", RgbImage{}); }).find("no pixels"), std::string::npos);
  for (auto& e : fs::directory_iterator(d.path))  // no temporary files left behind
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

// write_image writes the format the extension names, and refuses any other.
TEST(ocr, write_image_follows_the_extension) {
  TempDir d;
  RgbImage im;
  im.width = 5;
  im.height = 3;
  im.rgb.assign(5 * 3 * 3, 90);
  EXPECT_EQ(image_format_of("a.PNG"), ImageFileFormat::png);
  EXPECT_EQ(image_format_of("dir.x/a.Jpeg"), ImageFileFormat::jpeg);
  EXPECT_EQ(image_format_of("a.gif"), ImageFileFormat::unknown);
  EXPECT_EQ(image_format_of("png"), ImageFileFormat::unknown);
  auto head = [](const std::string& path) {
    std::vector<uint8_t> b = read_file_bytes(path, 4);
    return std::string(b.begin(), b.end());
  };
  write_image(d / "p.png", im);
  EXPECT_EQ(head(d / "p.png"), "\x89PNG");
  for (auto n : {"j.jpg", "j.JPEG"}) {
    write_image(d / n, im);
    EXPECT_EQ(head(d / n).substr(0, 3), "\xff\xd8\xff") << n;
    EXPECT_EQ(load_image(d / n).width, 5) << n;
  }
  EXPECT_NE(error_of([&] { write_image(d / "x.gif", im); }).find("names no format"), std::string::npos);
  EXPECT_FALSE(fs::exists(d / "x.gif"));
}

TEST(ocr, draw_boxes_outlines_fills_and_labels) {
  RgbImage im;
  im.width = 100;
  im.height = 80;
  im.rgb.assign(100 * 80 * 3, 255);
  auto col = label_colour("title");
  EXPECT_EQ(col, label_colour("title"));
  EXPECT_NE(col, label_colour("text"));
  draw_boxes(im, {{"title", 10, 30, 60, 70}, {"text", -50, -50, 500, 500}});
  // title: 4 pixels wide inwards from the bounds; the translucent fill tints the inside
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(im.at(10 + k, 50, 0), col[0], 30) << k;
  EXPECT_LT(im.at(35, 50, 0) + im.at(35, 50, 1) + im.at(35, 50, 2), 3 * 255);
  EXPECT_GT(im.at(35, 50, 0) + im.at(35, 50, 1) + im.at(35, 50, 2), 3 * 200);
  // the label is drawn above the box: some pixel in rows 20..29 near x=10 has the label colour
  bool label = false;
  for (int y = 18; y < 30; ++y)
    for (int x = 10; x < 45; ++x) label |= std::abs(im.at(x, y, 0) - col[0]) < 40 && im.at(x, y, 1) < 200;
  EXPECT_TRUE(label);
  RgbImage c = crop_image(im, -10, -10, 5, 7);
  EXPECT_EQ(c.width, 5);
  EXPECT_EQ(c.height, 7);
  EXPECT_EQ(crop_image(im, 50, 50, 40, 60).width, 0);
}

// ------------------------------------------------------------------ model location
TEST(ocr, default_model_falls_back_to_the_demo_model) {
  TempDir d;
  const std::string hub = d / "hub", demo = d / "demo";
  fs::create_directories(demo);
  setenv("DSOCR_DEMO_MODEL", (d / "absent").c_str(), 1);
  std::string note;
  EXPECT_EQ(bundled_demo_model_dir(), "");
  EXPECT_EQ(default_model_spec("org/name", note, hub), "org/name");  // no demo model: the repo id
  EXPECT_EQ(note, "");
  write_text(demo + "/config.json", "{}");
  setenv("DSOCR_DEMO_MODEL", demo.c_str(), 1);
  EXPECT_EQ(bundled_demo_model_dir(), demo);
  EXPECT_EQ(default_model_spec("org/name", note, hub), demo);  // not downloaded: the demo model, said why
  EXPECT_NE(note.find("org/name is not downloaded"), std::string::npos) << note;
  EXPECT_NE(note.find("huggingface-cli download org/name"), std::string::npos) << note;
  const std::string snap = hf_repo_dir(hub, "org/name") + "/snapshots/aaa";
  fs::create_directories(snap);
  write_text(snap + "/config.json", "{}");
  EXPECT_EQ(default_model_spec("org/name", note, hub), "org/name");  // downloaded: the repo id
  EXPECT_EQ(note, "");
  unsetenv("DSOCR_DEMO_MODEL");
}

TEST(ocr, hf_cache_lookup) {
  TempDir d;
  std::string hub = d / "hub";
  EXPECT_TRUE(looks_like_repo_id("deepseek-ai/DeepSeek-OCR"));
  EXPECT_FALSE(looks_like_repo_id("tests/goldens/tiny-ckpt"));
  EXPECT_FALSE(looks_like_repo_id("/abs"));
  EXPECT_FALSE(looks_like_repo_id("../x"));
  EXPECT_EQ(hf_repo_dir(hub, "org/name"), hub + "/models--org--name");

  std::string e = error_of([&] { resolve_model("org/name", hub); });
  EXPECT_NE(e.find("huggingface-cli download org/name"), std::string::npos) << e;
  EXPECT_NE(e.find("hf download org/name"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { resolve_model(d / "nope/x/y", hub); }).find("does not exist"), std::string::npos);

  // two snapshots, refs/main names the older one
  std::string repo = hf_repo_dir(hub, "org/name");
  for (auto rev : {"aaa", "bbb"}) {
    fs::create_directories(repo + "/snapshots/" + rev);
    write_text(repo + "/snapshots/" + rev + "/config.json", "{}");
    write_text(repo + "/snapshots/" + rev + "/tokenizer.json", "{}");
  }
  fs::create_directories(repo + "/refs");
  write_text(repo + "/refs/main", "aaa\n");
  EXPECT_EQ(resolve_model("org/name", hub).dir, repo + "/snapshots/aaa");
  EXPECT_EQ(resolve_model(repo, hub).dir, repo + "/snapshots/aaa");  // the repository folder itself
  write_text(repo + "/refs/main", "gone");
  EXPECT_NE(resolve_model("org/name", hub).dir.find("/snapshots/"), std::string::npos);
  // an unfinished download: the snapshot lacks tokenizer.json
  fs::remove(repo + "/snapshots/aaa/tokenizer.json");
  write_text(repo + "/refs/main", "aaa");
  e = error_of([&] { resolve_model("org/name", hub); });
  EXPECT_NE(e.find("no tokenizer.json"), std::string::npos) << e;
  EXPECT_NE(e.find("huggingface-cli download org/name"), std::string::npos) << e;
  // a plain directory
  EXPECT_EQ(resolve_model(ckpt_dir(), hub).dir, ckpt_dir());
  fs::create_directories(d / "plain");
  EXPECT_NE(error_of([&] { resolve_model(d / "plain", hub); }).find("no config.json"), std::string::npos);

  // where the cache is
  auto keep = [](const char* n) {
    const char* v = std::getenv(n);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto hh = keep("HF_HOME"), hc = keep("HF_HUB_CACHE"), lc = keep("HUGGINGFACE_HUB_CACHE");
  unsetenv("HF_HUB_CACHE");
  unsetenv("HUGGINGFACE_HUB_CACHE");
  setenv("HF_HOME", "/x/hf", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/x/hf/hub");
  setenv("HF_HUB_CACHE", "/y/hub", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/y/hub");
  auto restore = [](const char* n, const std::optional<std::string>& v) {
    if (v)
      setenv(n, v->c_str(), 1);
    else
      unsetenv(n);
  };
  restore("HF_HOME", hh);
  restore("HF_HUB_CACHE", hc);
  restore("HUGGINGFACE_HUB_CACHE", lc);
}

#include "apps/ocr_args.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "model/config.h"
#include "model/hf_cache.h"
#include "model/preprocess.h"
#include "ocr/corpus.h"
#include "ocr/draw.h"
#include "ocr/inputs.h"
#include "ocr/prompt.h"
#include "runtime/error.h"

namespace dsocr {

const char* const kOcrUsage =
    R"(usage: dsocr ocr INPUT... [options]

Reads PNG and JPEG images and PDF pages and writes what DeepSeek-OCR reads in them to stdout,
token by token. INPUT is a file, a folder (its PNG, JPEG and PDF files, sorted by name) or - for
standard input. Progress goes to stderr.

model and device:
  --model M             checkpoint directory (Hugging Face layout: config.json, tokenizer.json,
                        *.safetensors) or a repo id in the Hugging Face cache
                        ($HF_HOME/hub, ~/.cache/huggingface/hub); default $DSOCR_MODEL, else
                        deepseek-ai/DeepSeek-OCR (download: huggingface-cli download deepseek-ai/DeepSeek-OCR);
                        while that is not downloaded, dsocr's demo model ($DSOCR_DEMO_MODEL, else
                        models/dsocr-demo of the source tree) where there is one, said on stderr
  --device SPEC         OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
  --weights S           bf16 (default; alias compact): weight matrices kept as the checkpoint stores
                        them (exact, half of f32's memory); fp16: converted to half; int8, int4: the
                        language model's linears group-quantised (32 per group), the rest bf16;
                        f32: everything widened. A checkpoint written by dsocr convert loads its
                        quantised matrices as they are

what to ask:
  --task T              markdown (default, unless the checkpoint's config.json names its own prompt,
                        as dsocr's demo model does): <|grounding|>Convert the document to markdown.
                        ocr: <|grounding|>OCR this image.   free: Free OCR.
                        figure: Parse the figure.   describe: Describe this image in detail.
                        locate: Locate <|ref|>TEXT<|/ref|> in the image. (needs --ref TEXT)
  --ref TEXT            what --task locate looks for
  --prompt TEXT         a raw prompt instead of --task; must hold <image> once ("\n" = newline)

image views:
  --mode M              DeepSeek-OCR: tiny (512, 64 tokens), small (640, 100), base (1024, 256),
                        large (1280, 400), gundam (default: 1024 global view + 640 tiles; a checkpoint
                        whose config.json names its mode, as dsocr's demo model does, gets that one).
                        DeepSeek-OCR-2 has one mode, ocr2 (its default: 1024 global view + 768 tiles,
                        at most 6; 257 + 144 per tile tokens). A mode of the other model is refused.
  --max-tiles N         gundam tile grids of 2..N tiles, N in 2..9 (default 6, as the official vLLM
                        scripts; the Hugging Face infer() uses 9); ocr2: N in 2..6
  --no-crop             gundam without tiles (the global view only, which is base mode); not ocr2
  --dpi D               PDF rendering resolution (default 144, as the official PDF script)
  --pages LIST          PDF pages, e.g. 1-5, 3, 2,4,7- (default all)

generation:
  --max-new-tokens N    at most N generated tokens per page (default 8192; capped to the context).
                        Stopping at a limit you set is reported as information; stopping at the
                        default limit or the context without an end-of-sequence token, as a warning
  --ngram N             no-repeat n-gram size over the generated ids, 0 = off (default 30)
  --ngram-window W      how far back the n-gram rule looks (default 90); <td>, </td> are exempt
  --kv S                KV cache storage: f16 (default; half of f32's memory and bandwidth), bf16,
                        or f32 (the reference's arithmetic, as the golden files)
  --max-batch N         pages decoded together when there are several (images, a folder, PDF
                        pages), N in 1..256 (default 8; fewer when their KV caches would take more
                        than half of the free device memory). Each page's output is the one it
                        gets alone (from 16 at once on a GPU within rounding of its logits:
                        DSOCR_BATCH_GEMM); pages are printed in order as each is complete. 1: one
                        page at a time, streamed as generated

output:
  --format F            text: the model's output as generated (grounding tags kept);
                        markdown: the official post-processing (image regions cropped to
                        OUT-DIR/images/K.jpg and linked as ![](images/K.jpg), other <|ref|>/<|det|>
                        tags removed, \coloneqq -> :=, \eqqcolon -> =:);
                        json: one JSON object per page and line (text, markdown, boxes in pixels,
                        token counts, generated ids, timings).
                        Default: markdown for --task markdown, text otherwise.
                        An input that cannot be read gives {"source", "page", "error"} instead.
  --out-dir DIR         where image crops go (default ./dsocr-out; created when needed)
  --boxes FILE          draw the grounding boxes over the page, as PNG (FILE.png) or JPEG (FILE.jpg,
                        FILE.jpeg); with several pages FILE-1.png, FILE-2.png, ...
  --quiet, -q           no progress on stderr (warnings and errors still go there)
Pages are separated by a line "<--- Page Split --->" (text and markdown).

corpus (a large set of documents, run in parts, resumable):
  --manifest FILE       inputs listed in FILE, one per line (blank lines and # comments skipped;
                        relative paths from FILE's folder), after those on the command line
  --shard I/N           take only the inputs at positions I, I+N, I+2N, ... (0-based, after folders
                        are listed file by file): N runs with I = 0..N-1 share a corpus
  --results DIR         each page's output in a file of its own, DIR/KEY.pPAGE.EXT (KEY the input
                        path with other bytes than [A-Za-z0-9._-] as %XX; PAGE 0 for an image;
                        EXT txt, md or json as --format), written whole or not at all, instead
                        of stdout. A page whose file is there is skipped: running the same command
                        again after a crash or a kill does only the pages not yet done

Progress goes to stderr: the device, the model, each page with its stage times (kernel compile
time kept apart: kernels compile on the first run, then load from the program cache), and while
generating, tokens, tokens/s and elapsed time (when stdout is not a terminal or with --format json).
Every input gets its own result or error: one that cannot be read (missing, unsupported, corrupt)
is reported and the others are still processed. The option values and output paths (--boxes,
--out-dir) are checked before any work starts.
Exit status: 0 every input succeeded; 1 an input failed (the others were processed) or the model
or device failed; 2 usage (unknown option, bad value, unusable output path).
)";

namespace {

// The view mode and prompt a checkpoint says it was trained for (config.json "dsocr_demo", which
// dsocr's demo checkpoints carry); empty when it names none or cannot be read here (the run then
// reports the model's problem when it locates it).
std::string escape_newlines(std::string s) {
  for (size_t i = 0; (i = s.find('\n', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\n");
  return s;
}

struct CheckpointDefaults {
  std::string mode, prompt;
  int version = 0;  // 1 or 2 (model/preprocess.h ModeSpec::version); 0: config.json unreadable here
};

CheckpointDefaults checkpoint_defaults(const std::string& spec) {
  try {
    ModelConfig c = load_config((std::filesystem::path(resolve_model(spec).dir) / "config.json").string());
    const int version = c.is_v2() ? 2 : 1;
    return {c.default_mode.empty() && version == 2 ? default_mode(2) : c.default_mode, c.default_prompt, version};
  } catch (const std::exception&) {
    return {};
  }
}

// The mode must belong to the checkpoint's model (DeepSeek-OCR's five, or DeepSeek-OCR-2's ocr2).
void check_mode_fits(const ModelSettings& s, int version, bool max_tiles_given) {
  const ModeSpec m = mode_spec(s.opts.mode);
  if (version != 0 && m.version != version)
    throw UsageError(
        fmt::format("--mode {} is a {} mode, but {} is a {} checkpoint: use --mode {} (or leave --mode out)",
                    s.opts.mode, m.version == 2 ? "DeepSeek-OCR-2" : "DeepSeek-OCR", s.model_spec,
                    version == 2 ? "DeepSeek-OCR-2" : "DeepSeek-OCR",
                    version == 2 ? "ocr2" : "gundam, base, large, small or tiny"));
  if (m.version == 2 && !s.opts.crop) throw UsageError("--no-crop applies to gundam; ocr2 always tiles large pages");
  if (m.max_tiles > 0 && max_tiles_given && s.opts.max_tiles > m.max_tiles)
    throw UsageError(fmt::format("--max-tiles {}: {} uses at most {} tiles", s.opts.max_tiles, m.name, m.max_tiles));
}

std::string parse_prompt(std::string& task, const std::string& ref, std::string raw_prompt) {
  if (!raw_prompt.empty()) {
    if (!task.empty() || !ref.empty()) throw UsageError("--prompt replaces --task and --ref; give one or the other");
    for (size_t i = 0; (i = raw_prompt.find("\\n", i)) != std::string::npos;) raw_prompt.replace(i, 2, "\n");
    size_t at = raw_prompt.find("<image>");
    if (at == std::string::npos || raw_prompt.find("<image>", at + 7) != std::string::npos)
      throw UsageError("--prompt must hold <image> exactly once (where the image goes), e.g. \"<image>\\nFree OCR.\"");
    return raw_prompt;
  }
  if (task.empty()) task = "markdown";
  try {
    return task_prompt(task, ref);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

void check_outputs(const OcrSettings& s, bool out_dir_given) {
  if (!s.boxes_path.empty()) {
    if (image_format_of(s.boxes_path) == ImageFileFormat::unknown)
      throw UsageError(fmt::format("--boxes {}: name a PNG (.png) or JPEG (.jpg, .jpeg) file", s.boxes_path));
    check_output_file("--boxes", s.boxes_path);
  }
  // Image crops go to --out-dir with markdown and JSON output (the markdown post-processing).
  if (s.format != "text" || out_dir_given) check_output_dir("--out-dir", s.out_dir);
}

}  // namespace

ModelSettings parse_model_settings(Args& a) {
  ModelSettings s;
  s.ro.device = a.value("--device");
  const char* env_model = std::getenv("DSOCR_MODEL");
  if (a.given("--model") || (env_model && *env_model))
    s.model_spec = a.value("--model", env_model ? env_model : "");
  else  // the released model when downloaded, else the demo model that comes with dsocr (when there is one)
    s.model_spec = default_model_spec("deepseek-ai/DeepSeek-OCR", s.model_note);
  const bool mode_given = a.given("--mode");
  s.opts.mode = a.value("--mode", "gundam");
  const bool max_tiles_given = a.given("--max-tiles");
  s.opts.max_tiles = static_cast<int>(a.integer("--max-tiles", 6, 2, 9));
  s.opts.crop = !a.flag("--no-crop");
  s.task = a.value("--task");
  std::string ref = a.value("--ref"), raw_prompt = a.value("--prompt");
  const CheckpointDefaults ckpt = checkpoint_defaults(s.model_spec);
  if (!mode_given && !ckpt.mode.empty()) {
    s.opts.mode = ckpt.mode;
    s.from_checkpoint = "mode " + ckpt.mode;
  }
  if (s.task.empty() && ref.empty() && raw_prompt.empty() && !ckpt.prompt.empty()) {
    raw_prompt = ckpt.prompt;
    s.from_checkpoint +=
        std::string(s.from_checkpoint.empty() ? "" : ", ") + "prompt \"" + escape_newlines(ckpt.prompt) + "\"";
  }
  s.storage = usage_check("--weights", [&] { return weight_storage_from_string(a.value("--weights", "bf16")); });
  s.explicit_max = a.given("--max-new-tokens");
  s.opts.max_new_tokens = a.integer("--max-new-tokens", 8192, 1, 1 << 20);
  s.opts.ngram_size = static_cast<int>(a.integer("--ngram", 30, 0, 1 << 16));
  s.opts.ngram_window = static_cast<int>(a.integer("--ngram-window", 90, 0, 1 << 20));
  s.opts.kv = usage_check("--kv", [&] { return kv_storage_from_string(a.value("--kv", "f16")); });
  usage_check("--mode", [&] { return mode_spec(s.opts.mode); });
  check_mode_fits(s, ckpt.version, max_tiles_given);
  s.prompt = parse_prompt(s.task, ref, raw_prompt);
  return s;
}

OcrSettings parse_ocr(Args& a) {
  OcrSettings s;
  static_cast<ModelSettings&>(s) = parse_model_settings(a);
  s.format = a.value("--format");
  const bool out_dir_given = a.given("--out-dir");
  s.out_dir = a.value("--out-dir", "dsocr-out");
  s.boxes_path = a.value("--boxes");
  s.max_batch = static_cast<int>(a.integer("--max-batch", 8, 1, 256));
  s.pages_spec = a.value("--pages");
  s.dpi = a.number("--dpi", 144, 10, 1200);
  s.quiet = a.flag("--quiet") | a.flag("-q");
  s.manifest = a.value("--manifest");
  s.shard = a.value("--shard");
  s.results_dir = a.value("--results");
  s.inputs = a.positional();
  if (!s.manifest.empty()) {
    auto listed = usage_check("--manifest", [&] { return read_manifest(s.manifest); });
    s.inputs.insert(s.inputs.end(), listed.begin(), listed.end());
  }
  if (!s.shard.empty()) usage_check("--shard", [&] { return parse_shard(s.shard); });

  if (s.inputs.empty())
    throw UsageError("no input (a PNG, JPEG or PDF file, a folder, or - for stdin); see dsocr ocr --help");
  if (s.format.empty()) s.format = s.task == "markdown" ? "markdown" : "text";
  if (s.format != "text" && s.format != "markdown" && s.format != "json")
    throw UsageError(fmt::format("--format {}: expected text, markdown or json", s.format));
  if (!s.pages_spec.empty()) usage_check("--pages", [&] { return check_pages_spec(s.pages_spec); });
  if (std::count(s.inputs.begin(), s.inputs.end(), "-") > 1)
    throw UsageError("- (standard input) can be read only once");
  check_outputs(s, out_dir_given);
  return s;
}

}  // namespace dsocr

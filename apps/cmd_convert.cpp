// dsocr convert: writes a checkpoint in a compact weight storage once (model/convert.h), so that
// later loads skip the conversion.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "apps/commands.h"
#include "model/convert.h"
#include "model/hf_cache.h"

namespace dsocr {
namespace {

const char* kUsage =
    R"(usage: dsocr convert --weights int8|int4|fp16 SRC DST

Writes DST (a new or empty folder): model.safetensors with the weights in the storage asked for,
config.json, and SRC's other files (tokenizer, processor and generation configs). SRC is a
checkpoint folder or a repo id in the Hugging Face cache, as for dsocr ocr --model.
  int8, int4  the language model's linears quantised in groups of 32 along the input (an fp16
              scale and offset per group; MLX's affine layout: X.weight U32 codes, X.scales,
              X.biases); everything else copied as it is (bf16)
  fp16        every 2-D weight matrix converted to half (one beyond half's range stays as it was)
dsocr ocr --model DST then loads it without converting; whatever --weights it is given (except
f32, which widens), its quantised matrices stay as stored.
Exit status: 0, 1 the conversion failed, 2 usage.
)";

}  // namespace

int cmd_convert(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string w = a.value("--weights");
  auto pos = a.positional();
  if (w.empty() || pos.size() != 2) throw UsageError("usage: dsocr convert --weights int8|int4|fp16 SRC DST");
  const WeightStorage storage = usage_check("--weights", [&] { return weight_storage_from_string(w); });
  if (storage != WeightStorage::int8 && storage != WeightStorage::int4 && storage != WeightStorage::fp16)
    throw UsageError(fmt::format("--weights {}: convert writes int8, int4 or fp16", w));
  const ModelLocation loc = resolve_model(pos[0]);
  auto t0 = std::chrono::steady_clock::now();
  ConvertReport r = convert_checkpoint(loc.dir, pos[1], storage);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& n : r.notes) std::fprintf(stderr, "dsocr convert: note: %s\n", n.c_str());
  std::fprintf(stderr, "dsocr convert: %s -> %s (%s): %d tensors converted, %d copied; %.1f MiB -> %.1f MiB in %.1f s\n",
               loc.dir.c_str(), pos[1].c_str(), weight_storage_name(storage), r.converted, r.copied,
               double(r.bytes_in) / 1048576.0, double(r.bytes_out) / 1048576.0, s);
  return 0;
}

}  // namespace dsocr

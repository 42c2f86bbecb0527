// dsocr bench peak|kernels|model|all: measurements against the device's own peaks (bench/bench.h);
// dsocr bench quality: the accuracy of each weight storage on a checkpoint (bench/quality.h).
#include <fmt/format.h>

#include <charconv>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/runtime_setup.h"
#include "bench/bench.h"
#include "bench/quality.h"
#include "bench/startup.h"
#include "model/decoder.h"

#ifndef DSOCR_GIT_SHA
#define DSOCR_GIT_SHA "unknown"
#endif
#ifndef DSOCR_VERSION
#define DSOCR_VERSION "0.1.0"  // CMakeLists.txt's project(VERSION)
#endif

namespace dsocr {

// Here because CMake passes DSOCR_GIT_SHA to this file (the commit benchmarks record).
std::string version_line() { return fmt::format("dsocr {} (git {})", DSOCR_VERSION, DSOCR_GIT_SHA); }

namespace {

const char* kUsage =
    R"(usage: dsocr bench [peak|kernels|model|all] [options]
       dsocr bench quality --model DIR|--random --image FILE [--tokens N] [--mode M] [--small] [--json F]

Measures the device's copy bandwidth and CLBlast SGEMM rate (peak), every kernel family at
DeepSeek-OCR's real shapes (kernels: median device time of --runs after a warm-up that compiles
everything, as GFLOP/s, GB/s and % of those measured rates), and the full-size model with random
weights (model: vision per Base view and Gundam page, 1k-token prefill, decode tok/s, peak
device memory; no download). Default: all.
  --device SPEC        OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
  --runs N             timed runs per measurement, the median is reported (default 5)
  --small              reduced shapes for CPU devices and tests (the names state the shapes run)
  --only TEXT          kernels: only the cases whose name contains TEXT (e.g. sdpa, gemv, norm)
  --weights S          model: bf16 (default: matrices as the checkpoint; alias compact), fp16,
                       int8, int4 (the LM's linears group-quantised) or f32
  --kv S               model: KV cache storage f16 (default, as dsocr ocr), bf16 or f32
  --arch A             model: ocr (DeepSeek-OCR, default) or ocr2 (DeepSeek-OCR-2: Qwen2 encoder,
                       global view and a page of 6 tiles of 768)
  --checkpoint DIR     model: also time start-up: `dsocr ocr --mode base --max-new-tokens 32` on
                       DIR (e.g. a full-size checkpoint with random weights) run as a child
                       process, with empty program and driver caches (a first run ever), then
                       twice warm: wall time, load, compile, first token, decode tok/s
                       (--image F: the page, default a generated one; --mode M, default base;
                       --warm-only: the two warm runs only, on the program cache in use)
  --batch LIST         model: also decode B sequences together for each B of LIST (e.g. 1,8,32,64):
                       aggregate tok/s, step time, KV cache and device memory held, and pages per
                       minute estimated from the measured vision, prefill and step times
  --json FILE          everything measured, with device, driver, date, git commit and the tuning
                       knobs in force (DSOCR_GEMV, DSOCR_SDPA_TILES, ...: README)
  --csv FILE           the kernel table
quality: the f32 model generates --tokens (default 256) greedily from the page (--mode, default
tiny); each storage (bf16, fp16, int8, int4) then reads that text teacher-forced, and its logits
are compared with f32's: max and mean relative error (max |diff| / max |f32 logit| per position)
and the share of positions whose greedy token agrees. --random instead of --model: the full-size
model of `model` with random weights, the same values in every storage (--small: reduced shapes).
Exit status: 0, 1 a measurement failed, 2 usage (checked before the device is touched).
)";

struct BenchArgs {
  RuntimeOptions ro;
  bench::Options o;
  std::string what, json_path, csv_path;
  bench::QualityOptions q;
  bench::StartupOptions startup;  // --checkpoint (the image: --image, shared with quality)
};

BenchArgs parse(Args& a) {
  BenchArgs b;
  b.ro.device = a.value("--device");
  b.ro.timing = true;
  b.ro.tuning = Tuning::from_env();  // once, for both runtimes (a refused value fails before any work)
  b.o.runs = static_cast<int>(a.integer("--runs", 5, 1, 100000));
  b.o.small = a.flag("--small");
  b.o.only = a.value("--only");
  b.o.storage = usage_check("--weights", [&] { return weight_storage_from_string(a.value("--weights", "bf16")); });
  b.o.kv = usage_check("--kv", [&] { return kv_storage_from_string(a.value("--kv", "f16")); });
  const std::string arch = a.value("--arch", "ocr");
  if (arch != "ocr" && arch != "ocr2")
    throw UsageError(fmt::format("--arch {}: expected ocr (DeepSeek-OCR) or ocr2 (DeepSeek-OCR-2)", arch));
  b.o.ocr2 = arch == "ocr2";
  if (const std::string bl = a.value("--batch"); !bl.empty()) {
    size_t at = 0;
    while (at <= bl.size()) {
      const size_t comma = std::min(bl.find(',', at), bl.size());
      const std::string item = bl.substr(at, comma - at);
      int v = 0;
      const auto res = std::from_chars(item.data(), item.data() + item.size(), v);
      if (item.empty() || res.ec != std::errc() || res.ptr != item.data() + item.size() || v < 1 || v > 1024)
        throw UsageError(fmt::format("--batch {}: expected batch sizes 1..1024 separated by commas", bl));
      b.o.batch.push_back(v);
      at = comma + 1;
    }
  }
  b.startup.checkpoint = a.value("--checkpoint");
  if (std::error_code ec; !b.startup.checkpoint.empty() && !std::filesystem::is_directory(b.startup.checkpoint, ec))
    throw UsageError(fmt::format("--checkpoint {} is not a folder", b.startup.checkpoint));
  b.startup.device = b.ro.device;
  b.startup.cold = !a.flag("--warm-only");
  if (a.given("--mode")) b.startup.mode = a.value("--mode");
  b.json_path = a.value("--json");
  b.csv_path = a.value("--csv");
  b.q.model_dir = a.value("--model");
  const bool random = a.flag("--random");
  b.q.small = b.o.small;
  b.q.image = a.value("--image");
  b.startup.image = b.q.image;
  b.q.mode = a.value("--mode", "tiny");
  b.q.tokens = a.integer("--tokens", 256, 1, 1 << 20);
  auto pos = a.positional();
  b.what = pos.empty() ? "all" : pos[0];
  if (pos.size() > 1 ||
      (b.what != "peak" && b.what != "kernels" && b.what != "model" && b.what != "all" && b.what != "quality"))
    throw UsageError(
        "usage: dsocr bench [peak|kernels|model|all|quality] [--device SPEC] [--runs N] [--small] [--only NAME] "
        "[--weights bf16|fp16|int8|int4|f32] [--kv f16|bf16|f32] [--arch ocr|ocr2] [--batch LIST] [--checkpoint DIR] "
        "[--json F] "
        "[--csv F]");
  if (b.what == "quality" && (b.q.model_dir.empty() == !random || b.q.image.empty()))
    throw UsageError("dsocr bench quality needs --model DIR or --random (one of them) and --image FILE");
  if (!b.o.only.empty() && bench::kernel_selection_empty(b.o)) {
    std::string names;
    for (auto& n : bench::kernel_names(b.o.small)) names += "\n  " + n;
    throw UsageError(fmt::format("--only {}: no kernel case contains it; the cases{} are:{}", b.o.only,
                                 b.o.small ? " (--small)" : "", names));
  }
  if (!b.json_path.empty()) check_output_file("--json", b.json_path);
  if (!b.csv_path.empty()) check_output_file("--csv", b.csv_path);
  return b;
}

// "12.3%", or "332.0%!" for a rate above its yardstick (see bench::Peak).
std::string pct_text(double pct) { return fmt::format("{:.1f}%{}", pct, pct > 100.0 ? "!" : " "); }

void report_kernels(const std::vector<bench::KernelResult>& ks, const bench::Peak& peak, nlohmann::json& j,
                    const std::string& csv_path) {
  fmt::print("\n{:<38} {:>10} {:>10} {:>9} {:>9}  {}\n", "kernel", "ms", "GFLOP/s", "GB/s", "% peak", "bound");
  std::string csv = "kernel,ms,gflop,gbytes,gflops,gbs,pct_peak,bound\n";
  j["kernels"] = nlohmann::json::array();
  bool above = false;
  for (auto& k : ks) {
    const double pct = k.pct_peak(peak);
    above |= pct > 100.0;
    fmt::print("{:<38} {:>10.4f} {:>10.1f} {:>9.1f} {:>9}  {}\n", k.name, k.ms, k.gflops(), k.gbs(), pct_text(pct),
               k.bound);
    csv += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.3f},{:.3f},{:.2f},{}\n", k.name, k.ms, k.gflop, k.gbytes, k.gflops(),
                       k.gbs(), pct, k.bound);
    j["kernels"].push_back({{"name", k.name},
                            {"ms", k.ms},
                            {"gflop", k.gflop},
                            {"gbytes", k.gbytes},
                            {"gflops", k.gflops()},
                            {"gbs", k.gbs()},
                            {"pct_peak", pct},
                            {"above_peak", pct > 100.0},
                            {"bound", k.bound}});
  }
  fmt::print(
      "% peak: of the measured CLBlast SGEMM rate (compute) or copy bandwidth (memory), not of hardware limits.\n");
  if (above)
    fmt::print(
        "!: above that measured rate: a working set that stays in cache outruns a copy through memory, and\n"
        "   dsocr's own kernels can outrun CLBlast's SGEMM where CLBlast has no tuning for the device (a CPU);\n"
        "   the row is faster than the yardstick, which is then no peak for it.\n");
  if (!csv_path.empty()) {
    std::ofstream f(csv_path);
    if (!(f << csv)) throw Error("cannot write " + csv_path);
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  if (path.empty()) return;
  std::ofstream f(path);
  if (!(f << j.dump(2) << "\n")) throw Error("cannot write " + path);
}

int report_quality(Runtime& rt, const BenchArgs& b, nlohmann::json& j) {
  const std::string subject = b.q.model_dir.empty()
                                  ? fmt::format("the {}random-weight model", b.q.small ? "reduced " : "full-size ")
                                  : b.q.model_dir;
  fmt::print("weight storages against f32 on {} ({} view, {} tokens teacher-forced)\n", subject, b.q.mode,
             b.q.tokens);
  auto rows = bench::measure_quality(rt, b.q);
  fmt::print("{:<8} {:<5} {:>12} {:>14} {:>14} {:>12}\n", "weights", "kv", "model MiB", "max rel err",
             "mean rel err", "agreement");
  j["quality"] = {{"model", subject}, {"image", b.q.image}, {"mode", b.q.mode}, {"tokens", b.q.tokens}};
  j["quality"]["rows"] = nlohmann::json::array();
  for (const auto& r : rows) {
    fmt::print("{:<8} {:<5} {:>12.2f} {:>14.3e} {:>14.3e} {:>11.1f}%\n", weight_storage_name(r.storage),
               dtype_name(r.kv), r.weights_mib, r.max_rel, r.mean_rel, 100.0 * r.agree);
    for (const auto& n : r.notes) fmt::print("  note: {}\n", n);
    j["quality"]["rows"].push_back({{"weights", weight_storage_name(r.storage)},
                                    {"kv", dtype_name(r.kv)},
                                    {"model_mib", r.weights_mib},
                                    {"max_rel", r.max_rel},
                                    {"mean_rel", r.mean_rel},
                                    {"agree", r.agree},
                                    {"positions", r.positions},
                                    {"notes", r.notes}});
  }
  write_json(b.json_path, j);
  return 0;
}

void report_model(Runtime& rt, const BenchArgs& b, const bench::Peak& peak,
                  const std::vector<bench::StartupRun>& startup_runs, nlohmann::json& j) {
  // The model runs as `dsocr ocr` does: a runtime of its own without per-launch events.
  rt.trim();
  RuntimeOptions mo = b.ro;
  mo.timing = false;
  std::unique_ptr<Runtime> mrt = open_runtime(mo);
  const bench::Options& o = b.o;
  bench::ModelResult m = bench::bench_model(*mrt, o);
  const double gemm = peak.sgemm_gflops * 1e9;
  auto pct = [&](double tflop, double ms) { return ms > 0 ? 100.0 * tflop * 1e12 / (ms * 1e-3) / gemm : 0.0; };
  const double ceiling = peak.copy_gbs / 2 / m.decode_gbytes_per_token;  // reads only: half the copy traffic
  fmt::print("\nmodel (random weights, {} storage, {:.0f} MiB of weights, {} KV cache, initialised in {:.1f} s)\n",
             weight_storage_name(o.storage), m.weights_mib, dtype_name(o.kv), m.init_s);
  fmt::print("  vision, {} view (1024):        {:9.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak\n",
             o.ocr2 ? "global" : "Base", m.vision_base_ms, m.vision_base_tflop, pct(m.vision_base_tflop, m.vision_base_ms));
  fmt::print("  vision, {} page (1024 + 6x{}): {:6.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak\n",
             o.ocr2 ? "ocr2" : "Gundam", m.tile_side, m.vision_gundam_ms, m.vision_gundam_tflop,
             pct(m.vision_gundam_tflop, m.vision_gundam_ms));
  fmt::print("  vision, {} views in one pass:     {:9.2f} ms per view  {:5.1f}% of SGEMM peak\n",
             bench::ModelResult::kVisionBatch, m.vision_base_batch_ms, pct(m.vision_base_tflop, m.vision_base_batch_ms));
  fmt::print("  prefill, {} tokens:             {:9.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak  ({:.0f} tok/s)\n",
             m.prefill_tokens, m.prefill_ms, m.prefill_tflop, pct(m.prefill_tflop, m.prefill_ms),
             m.prefill_tokens / (m.prefill_ms / 1000.0));
  fmt::print(
      "  decode, {} tokens after the prompt: {:7.1f} tok/s  ({:.2f} GB of weights per token; {:.1f}% of the "
      "{:.0f} tok/s bandwidth ceiling; {:.0f} launches per token)\n",
      m.decode_tokens, m.decode_tok_s, m.decode_gbytes_per_token, 100.0 * m.decode_tok_s / ceiling, ceiling,
      m.decode_launches_per_token);
  fmt::print("  peak device memory ({}-token KV cache): {:.0f} MiB live, {:.0f} MiB held with the reuse cache\n",
             m.context, m.peak_mem_mib, m.peak_held_mib);
  nlohmann::json startup = nlohmann::json::array();
  if (!b.startup.checkpoint.empty()) {
    fmt::print("  start-up, dsocr ocr --mode {} --max-new-tokens {} on {} (a child process):\n", b.startup.mode,
               b.startup.tokens, b.startup.checkpoint);
    for (const bench::StartupRun& r : startup_runs) {
      fmt::print(
          "    {} program cache: {:6.2f} s wall, first token at {:6.2f} s (load {:.2f} s, compile {:.2f} s, vision "
          "{:.2f} s, prefill {:.2f} s), {} tokens at {:.1f} tok/s\n",
          r.cache, r.wall_s, r.first_token_s, r.load_s, r.compile_s, r.vision_s, r.prefill_s, r.tokens, r.decode_tok_s);
      startup.push_back({{"cache", r.cache},
                         {"wall_s", r.wall_s},
                         {"first_token_s", r.first_token_s},
                         {"load_s", r.load_s},
                         {"compile_s", r.compile_s},
                         {"preprocess_s", r.preprocess_s},
                         {"vision_s", r.vision_s},
                         {"prefill_s", r.prefill_s},
                         {"decode_s", r.decode_s},
                         {"decode_tok_s", r.decode_tok_s},
                         {"tokens", r.tokens}});
    }
  }
  nlohmann::json batches = nlohmann::json::array();
  if (!m.batch.empty())
    fmt::print("  batched decode ({} steps after {}-token prompts):\n", m.batch.front().steps, m.prefill_tokens);
  for (const bench::BatchPoint& p : m.batch) {
    fmt::print(
        "    batch {:4d}: {:9.1f} tok/s aggregate  {:7.2f} ms/step  {:5.0f} launches/step  {:6.1f} pages/min (est.)  "
        "KV {:7.1f} MiB  held {:7.0f} MiB  (prefill of all {:.0f} ms)\n",
        p.batch, p.tok_s, p.step_ms, p.launches_per_step, p.pages_per_min, p.kv_mib, p.held_mib, p.prefill_ms);
    batches.push_back({{"batch", p.batch},
                       {"steps", p.steps},
                       {"tok_s", p.tok_s},
                       {"step_ms", p.step_ms},
                       {"launches_per_step", p.launches_per_step},
                       {"pct_ceiling_per_step", 100.0 * (1000.0 / p.step_ms) / ceiling},
                       {"pages_per_min_est", p.pages_per_min},
                       {"kv_mib", p.kv_mib},
                       {"held_mib", p.held_mib},
                       {"prefill_ms", p.prefill_ms}});
  }
  j["model"] = {{"batch", batches},
                {"startup", startup},
                {"arch", o.ocr2 ? "ocr2" : "ocr"},
                {"tile_side", m.tile_side},
                {"weights", weight_storage_name(o.storage)},
                {"kv", dtype_name(o.kv)},
                {"init_s", m.init_s},
                {"weights_mib", m.weights_mib},
                {"vision_base_ms", m.vision_base_ms},
                {"vision_base_tflop", m.vision_base_tflop},
                {"vision_base_pct_sgemm", pct(m.vision_base_tflop, m.vision_base_ms)},
                {"vision_base_batch_ms", m.vision_base_batch_ms},
                {"vision_batch", bench::ModelResult::kVisionBatch},
                {"vision_gundam_ms", m.vision_gundam_ms},
                {"vision_gundam_tflop", m.vision_gundam_tflop},
                {"vision_gundam_pct_sgemm", pct(m.vision_gundam_tflop, m.vision_gundam_ms)},
                {"prefill_tokens", m.prefill_tokens},
                {"prefill_1k_ms", m.prefill_ms},
                {"prefill_tflop", m.prefill_tflop},
                {"prefill_pct_sgemm", pct(m.prefill_tflop, m.prefill_ms)},
                {"decode_tokens", m.decode_tokens},
                {"decode_tok_s", m.decode_tok_s},
                {"decode_launches_per_token", m.decode_launches_per_token},
                {"decode_gbytes_per_token", m.decode_gbytes_per_token},
                {"decode_ceiling_tok_s", ceiling},
                {"decode_pct_ceiling", 100.0 * m.decode_tok_s / ceiling},
                {"context", m.context},
                {"peak_mem_mib", m.peak_mem_mib},
                {"peak_held_mib", m.peak_held_mib}};
}

}  // namespace

int cmd_bench(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  BenchArgs b = parse(a);
  const bench::Options& o = b.o;
  // The start-up runs come first, while this process holds no device: on a GPU in exclusive-process
  // compute mode (NVIDIA data-centre defaults) a child could not open the device beside us.
  std::vector<bench::StartupRun> startup_runs;
  if (!b.startup.checkpoint.empty() && (b.what == "model" || b.what == "all"))
    startup_runs = bench::bench_startup(b.startup);

  std::unique_ptr<Runtime> opened = open_runtime(b.ro);
  Runtime& rt = *opened;
  const DeviceInfo& d = rt.device();
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  nlohmann::json j = {{"device", d.name},
                      {"platform", d.platform_name},
                      {"driver", d.driver_version},
                      {"date", date},
                      {"git_sha", DSOCR_GIT_SHA},
                      {"runs", o.runs},
                      {"shapes", o.small ? "small" : "real"}};
  fmt::print("dsocr bench on {} ({}, driver {}), {} runs, {} shapes, git {}\n", d.label(), d.platform_name,
             d.driver_version, o.runs, o.small ? "small" : "real", DSOCR_GIT_SHA);

  if (b.what == "quality") return report_quality(rt, b, j);
  if (!rt.gemm_tuning().empty()) fmt::print("{}\n", rt.gemm_tuning());
  if (!rt.tuning().from_environment.empty())
    fmt::print("tuning (set from the environment: {}):\n{}", fmt::join(rt.tuning().from_environment, ", "),
               rt.tuning().describe("  "));
  j["gemm_tuning"] = rt.gemm_tuning();
  j["tuning"] = nlohmann::json(rt.tuning().to_json());  // the knobs these figures were measured with
  bench::Peak peak = bench::measure_peak(rt, o);
  std::string by_n;
  for (auto& [n, g] : peak.sgemm_by_n) by_n += fmt::format("{}{}^3 {:.0f}", by_n.empty() ? "" : ", ", n, g);
  fmt::print("peak: copy {:.1f} GB/s ({} MiB, read + write), SGEMM {:.0f} GFLOP/s ({}^3; best of {})\n", peak.copy_gbs,
             peak.copy_bytes >> 20, peak.sgemm_gflops, peak.gemm_n, by_n);
  nlohmann::json sizes = nlohmann::json::object();
  for (auto& [n, g] : peak.sgemm_by_n) sizes[std::to_string(n)] = g;
  j["peak"] = {{"copy_gbs", peak.copy_gbs},
               {"sgemm_gflops", peak.sgemm_gflops},
               {"copy_bytes", peak.copy_bytes},
               {"gemm_n", peak.gemm_n},
               {"sgemm_gflops_by_n", sizes}};

  if (b.what == "kernels" || b.what == "all") report_kernels(bench::bench_kernels(rt, o), peak, j, b.csv_path);
  if (b.what == "model" || b.what == "all") report_model(rt, b, peak, startup_runs, j);
  write_json(b.json_path, j);
  return 0;
}

}  // namespace dsocr

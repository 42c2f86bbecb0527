// dsocr bench peak|kernels|model|all: measurements against the device's own peaks (bench/bench.h).
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "bench/bench.h"

namespace dsocr {

int cmd_bench(const std::vector<std::string>& argv) {
  Args a(argv);
  RuntimeOptions ro;
  ro.device = a.value("--device");
  ro.timing = true;
  bench::Options o;
  o.runs = std::stoi(a.value("--runs", "5"));
  o.small = a.flag("--small");
  o.only = a.value("--only");
  o.storage = weight_storage_from_string(a.value("--weights", "compact"));
  std::string json_path = a.value("--json"), csv_path = a.value("--csv");
  auto pos = a.positional();
  std::string what = pos.empty() ? "all" : pos[0];
  if (pos.size() > 1 || (what != "peak" && what != "kernels" && what != "model" && what != "all"))
    throw UsageError(
        "usage: dsocr bench [peak|kernels|model|all] [--device SPEC] [--runs N] [--small] [--only NAME] "
        "[--weights compact|f32] [--json F] [--csv F]");
  if (o.runs < 1) throw UsageError("--runs must be at least 1");

  Runtime rt(ro);
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

  if (!rt.gemm_tuning().empty()) fmt::print("{}\n", rt.gemm_tuning());
  j["gemm_tuning"] = rt.gemm_tuning();
  bench::Peak peak = bench::measure_peak(rt, o);
  fmt::print("peak: copy {:.1f} GB/s ({} MiB, read + write), SGEMM {:.0f} GFLOP/s ({}^3)\n", peak.copy_gbs,
             peak.copy_bytes >> 20, peak.sgemm_gflops, peak.gemm_n);
  j["peak"] = {{"copy_gbs", peak.copy_gbs},
               {"sgemm_gflops", peak.sgemm_gflops},
               {"copy_bytes", peak.copy_bytes},
               {"gemm_n", peak.gemm_n}};

  if (what == "kernels" || what == "all") {
    auto ks = bench::bench_kernels(rt, o);
    fmt::print("\n{:<38} {:>10} {:>10} {:>9} {:>8}  {}\n", "kernel", "ms", "GFLOP/s", "GB/s", "% peak", "bound");
    std::string csv = "kernel,ms,gflop,gbytes,gflops,gbs,pct_peak,bound\n";
    j["kernels"] = nlohmann::json::array();
    for (auto& k : ks) {
      fmt::print("{:<38} {:>10.4f} {:>10.1f} {:>9.1f} {:>7.1f}%  {}\n", k.name, k.ms, k.gflops(), k.gbs(),
                 k.pct_peak(peak), k.bound);
      csv += fmt::format("{},{:.6f},{:.6f},{:.6f},{:.3f},{:.3f},{:.2f},{}\n", k.name, k.ms, k.gflop, k.gbytes,
                         k.gflops(), k.gbs(), k.pct_peak(peak), k.bound);
      j["kernels"].push_back({{"name", k.name},
                              {"ms", k.ms},
                              {"gflop", k.gflop},
                              {"gbytes", k.gbytes},
                              {"gflops", k.gflops()},
                              {"gbs", k.gbs()},
                              {"pct_peak", k.pct_peak(peak)},
                              {"bound", k.bound}});
    }
    if (!csv_path.empty()) {
      std::ofstream f(csv_path);
      if (!(f << csv)) throw Error("cannot write " + csv_path);
    }
  }
  if (what == "model" || what == "all") {
    // The model runs as `dsocr ocr` does: a runtime of its own without per-launch events.
    rt.trim();
    RuntimeOptions mo = ro;
    mo.timing = false;
    Runtime mrt(mo);
    bench::ModelResult m = bench::bench_model(mrt, o);
    const double gemm = peak.sgemm_gflops * 1e9;
    auto pct = [&](double tflop, double ms) { return ms > 0 ? 100.0 * tflop * 1e12 / (ms * 1e-3) / gemm : 0.0; };
    const double ceiling = peak.copy_gbs / 2 / m.decode_gbytes_per_token;  // reads only: half the copy traffic
    fmt::print("\nmodel (random weights, {} storage, {:.0f} MiB of weights, initialised in {:.1f} s)\n",
               o.storage == WeightStorage::f32 ? "fp32" : "bf16 matrices", m.weights_mib, m.init_s);
    fmt::print("  vision, Base view (1024):        {:9.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak\n",
               m.vision_base_ms, m.vision_base_tflop, pct(m.vision_base_tflop, m.vision_base_ms));
    fmt::print("  vision, Gundam page (1024 + 6x640): {:6.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak\n",
               m.vision_gundam_ms, m.vision_gundam_tflop, pct(m.vision_gundam_tflop, m.vision_gundam_ms));
    fmt::print("  prefill, {} tokens:             {:9.2f} ms  {:6.2f} TFLOP  {:5.1f}% of SGEMM peak  ({:.0f} tok/s)\n",
               m.prefill_tokens, m.prefill_ms, m.prefill_tflop, pct(m.prefill_tflop, m.prefill_ms),
               m.prefill_tokens / (m.prefill_ms / 1000.0));
    fmt::print(
        "  decode, {} tokens after the prompt: {:7.1f} tok/s  ({:.2f} GB of weights per token; {:.1f}% of the "
        "{:.0f} tok/s bandwidth ceiling; {:.0f} launches per token)\n",
        m.decode_tokens, m.decode_tok_s, m.decode_gbytes_per_token, 100.0 * m.decode_tok_s / ceiling, ceiling,
        m.decode_launches_per_token);
    fmt::print("  peak device memory: {:.0f} MiB live, {:.0f} MiB held with the reuse cache\n", m.peak_mem_mib,
               m.peak_held_mib);
    j["model"] = {{"weights", o.storage == WeightStorage::f32 ? "f32" : "bf16"},
                  {"init_s", m.init_s},
                  {"weights_mib", m.weights_mib},
                  {"vision_base_ms", m.vision_base_ms},
                  {"vision_base_tflop", m.vision_base_tflop},
                  {"vision_base_pct_sgemm", pct(m.vision_base_tflop, m.vision_base_ms)},
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
                  {"peak_mem_mib", m.peak_mem_mib},
                  {"peak_held_mib", m.peak_held_mib}};
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!(f << j.dump(2) << "\n")) throw Error("cannot write " + json_path);
  }
  return 0;
}

}  // namespace dsocr

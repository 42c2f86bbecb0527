// dsocr bench: kernel and end-to-end benchmarks (issue 7, targets in docs/targets.md).
// Every figure is measured in the same run as the device's own peaks (copy bandwidth, SGEMM rate)
// and reported as a fraction of them. Kernels are timed with OpenCL events after warm-up (median
// of N runs, the device time between a marker before and one after); nothing is compiled while
// timing (the warm-up builds every program).
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/weights.h"
#include "runtime/runtime.h"

namespace dsocr::bench {

struct Options {
  int runs = 5, warmup = 2;
  bool small = false;  // reduced shapes (CPU devices, tests): the same code paths, smaller numbers
  std::string only;    // kernels: time only those whose name contains this (see kernel_names)
  WeightStorage storage = WeightStorage::bf16;  // model: weight storage (model/weights.h)
  DType kv = DType::f16;                        // model: KV cache storage (as dsocr ocr's default)
  int64_t context = 8192;                       // model: KV cache capacity while decoding (peak memory)
  bool ocr2 = false;                            // model: DeepSeek-OCR-2 (--arch ocr2) instead of v1
  std::vector<int> batch;                       // model: decode batch sizes to measure (--batch 1,8,32)
};

// Decoding B sequences together (model/batch_generate.h): each prefilled with the prompt of the
// single-sequence measurement, then `steps` steps of B tokens each.
struct BatchPoint {
  int batch = 0;
  int64_t steps = 0;
  double prefill_ms = 0;    // all B prompts, one after another
  double step_ms = 0;       // one decode step (B tokens), median
  double tok_s = 0;         // aggregate: B tokens per step
  double kv_mib = 0;        // the batch's KV cache (B slots of prompt + steps + 1 tokens)
  double held_mib = 0;      // device memory held (live + reuse cache) after the steps
  double pages_per_min = 0; // estimate: 60 s / (vision per Gundam page + prefill + 256 tokens at this rate)
  double launches_per_step = 0;  // kernels, CLBlast calls, copies and fills per step (all B tokens)
};

// The yardsticks kernels are measured against. They are measured rates, not hardware limits: a
// kernel can exceed them (a working set that stays in cache beats a copy through DRAM; dsocr's
// own kernels can beat CLBlast's SGEMM on a device CLBlast has no tuning for), and the report
// flags every such row rather than showing it as a share of a peak.
struct Peak {
  double copy_gbs = 0;                                 // device-to-device copy, bytes read + written
  double sgemm_gflops = 0;                             // CLBlast SGEMM, square: the best over sgemm_by_n
  int64_t copy_bytes = 0, gemm_n = 0;                  // gemm_n: the size that gave sgemm_gflops
  std::vector<std::pair<int64_t, double>> sgemm_by_n;  // (n, GFLOP/s) of each size measured
};

struct KernelResult {
  std::string name, bound;  // bound: "compute" or "memory"
  double ms = 0, gflop = 0, gbytes = 0;
  double gflops() const { return ms > 0 ? gflop / (ms * 1e-3) : 0; }
  double gbs() const { return ms > 0 ? gbytes / (ms * 1e-3) : 0; }
  double pct_peak(const Peak& p) const;
};

struct ModelResult {
  double init_s = 0;  // random-weight initialisation on the device (no file read)
  double vision_base_ms = 0, vision_gundam_ms = 0, prefill_ms = 0, decode_tok_s = 0;
  double vision_base_tflop = 0, vision_gundam_tflop = 0, prefill_tflop = 0, decode_gbytes_per_token = 0;
  double vision_base_batch_ms = 0;  // per Base view when kVisionBatch pages' views share one pass
  static constexpr int kVisionBatch = 4;
  int64_t prefill_tokens = 0, decode_tokens = 0, context = 0;  // context: the KV cache's capacity
  int64_t tile_side = 640;                                     // the page's tiles (v2: 768)
  double decode_launches_per_token = 0;  // kernels, CLBlast calls, copies and fills per decoded token
  double peak_mem_mib = 0, peak_held_mib = 0, weights_mib = 0;  // live; live + cached for reuse
  std::vector<BatchPoint> batch;  // Options::batch, in order
};

// Median device time (ms) of fn over opts.runs runs after opts.warmup, between queue markers
// (wall clock around a finished queue where the driver gives no profiling timestamps).
double time_device_ms(Runtime& rt, const Options& opts, const std::function<void()>& fn);

Peak measure_peak(Runtime& rt, const Options& opts);
// The kernel cases' names at the shapes opts.small selects; each states the shape it runs
// (e.g. gemm_sam_qkv_4096x768x2304). No device needed: --only is checked against them up front.
std::vector<std::string> kernel_names(bool small);
bool kernel_selection_empty(const Options& opts);  // no name contains opts.only
std::vector<KernelResult> bench_kernels(Runtime& rt, const Options& opts);
ModelResult bench_model(Runtime& rt, const Options& opts);
// The model bench_model runs (official sizes, or reduced with small), its random weights kept in
// `storage`: the same values for every storage (the same seeds in the same order).
OcrModel random_model(Runtime& rt, bool small, WeightStorage storage);
// The configuration bench_model runs: v1 or (ocr2) DeepSeek-OCR-2, official or reduced sizes.
ModelConfig bench_config(bool small, bool ocr2 = false);

}  // namespace dsocr::bench

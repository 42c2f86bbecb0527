#!/usr/bin/env python3
"""The PyTorch side of `dsocr bench` (issue 7): the same measurements with the reference model
(reference/dsocr_ref) on the same machine, eager, CUDA when present, fp32 and bf16.

  python3 bench/torch_bench.py [--dtypes fp32,bf16] [--runs N] [--skip-model] [--quick]
                               [--tiny] [--ops official|reference] [--device cuda|cpu] [--out F]
  python3 bench/torch_bench.py --check [--device ...]   # tiny model: patched ops == reference ops

Model: the FULL-size DeepSeek-OCR v1 (dsocr_ref.config.Config() defaults = the official v1 sizes)
with random weights drawn by the tiny checkpoint's own rule (dsocr_ref.checkpoint.random_init,
taken from its source so that `tokenizers` is not imported), on the device, then model.to(dtype).
Measured after warm-up with CUDA events (median of --runs): vision per Base view (global 1024²),
per Gundam page (global + 6 tiles of 640², 2 cols × 3 rows), prefill of 1024 tokens (lm_head on
the last token, as dsocr; also with all 1024 logits, as m.decode returns them), decode tok/s of
256 steps after a 1k-token prompt (m.decode of one embedding with the KV cache, argmax on the
device), peak CUDA memory. Kernels: the shapes and names of `dsocr bench kernels`
(bench/kernels.cpp), with torch ops. Peaks: 1 GiB device copy, 8192³ fp32 (no TF32) / TF32 /
bf16 matmul.

--ops official (default) runs the reference model with the ops the official Hugging Face code
calls (nn.functional conv2d / linear / layer_norm / gelu / silu / interpolate,
F.scaled_dot_product_attention with the additive rel-pos bias in SAM and in CLIP, transformers'
eager LlamaAttention in the LM, `moe_infer`'s one-sync expert loop); --ops reference runs the
reference's own formulas (im2col conv, written-out softmax attention, ...), made device-aware
only. Both compute the same function (--check compares them on the tiny model).

Nothing here imports `tokenizers` or `PIL`; no network.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the torch_bench_* modules beside this file

import torch  # noqa: E402

from torch_bench_check import check  # noqa: E402
from torch_bench_common import (DTYPES, HAS_SDPA, NOTES, Timer, cpu_name, dt_name, log,  # noqa: E402
                                run_identity, set_fp32_ieee)
from torch_bench_kernels import bench_kernels, measure_peaks  # noqa: E402
from torch_bench_model import add_model_pcts, bench_model, build_model, full_config, tiny_config  # noqa: E402
from torch_bench_ops import drop_param_caches, install_ops  # noqa: E402


# ============================================================================ main
def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="torch_bench.json")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per measure, median (default 5; --quick 2)")
    ap.add_argument("--decode-runs", type=int, default=None, help="timed 256-token decodes (default 3; --quick 1)")
    ap.add_argument("--skip-model", action="store_true", help="peaks and kernels only")
    ap.add_argument("--skip-kernels", action="store_true")
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--tiny", action="store_true",
                    help="tiny config and dsocr's --small kernel shapes: tests the code paths on a CPU")
    ap.add_argument("--ops", choices=["official", "reference"], default="official")
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--check", action="store_true", help="tiny model: the ops variants agree; exits")
    return ap.parse_args(argv)


def run_header(a, dev, name, fp32_mode, dtypes):
    """The JSON's description of the run."""
    res = {
        **run_identity("bench/torch_bench.py", name, dev, a.tiny),
        "ops": a.ops,
        "sdpa": ("F.scaled_dot_product_attention" if HAS_SDPA else
                 f"eager fallback (torch {torch.__version__} has no F.scaled_dot_product_attention)"),
        "fp32": fp32_mode,
        "runs": a.runs, "decode_runs": a.decode_runs, "warmup": a.warmup, "kernel_runs": a.kernel_runs,
        "dtypes": [dt_name(d) for d in dtypes],
    }
    if dev.type == "cpu":
        res["threads"] = torch.get_num_threads()
    return res


def run_kernels(res, dev, dtypes, tm, a):
    pk = res["peak"]
    res["kernels"] = {dt_name(dt): bench_kernels(dev, dt, tm, a) for dt in dtypes}
    for rows in res["kernels"].values():
        for row in rows:
            if row.get("ms"):
                peak_v = pk["copy_gbs"] if row["bound"] == "memory" else pk["sgemm_gflops"]
                row["pct_peak"] = 100.0 * (row["gbs"] if row["bound"] == "memory" else row["gflops"]) / peak_v


def run_model(res, dev, dtypes, tm, a):
    c = tiny_config() if a.tiny else full_config()
    m, init_s = build_model(c, dev)
    res["model_info"] = {"params": sum(p.numel() for p in m.parameters()), "init_s": init_s,
                         "init": "dsocr_ref.checkpoint.random_init (seed 1234), on the device",
                         "global_view": c.sam_image_size, "tiles": "6 x 640, grid 2 cols x 3 rows"}
    log(f"model: {res['model_info']['params'] / 1e9:.3f} B parameters, initialised in {init_s:.1f} s")
    res["model"] = {}
    for dt in dtypes:
        if next(m.parameters()).dtype != dt:
            m.to(dt)
            drop_param_caches(m)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        r = bench_model(m, c, dev, dt, tm, a)
        add_model_pcts(r, res["peak"], dt)
        res["model"][dt_name(dt)] = r
    del m


def main(argv=None):
    a = parse_args(argv)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if a.threads:
        torch.set_num_threads(a.threads)
    fp32_mode = set_fp32_ieee()
    if a.check:
        return check(dev)
    a.runs = a.runs or (2 if a.quick else 5)
    a.decode_runs = a.decode_runs or (1 if a.quick else 3)
    a.warmup = 1 if a.quick else 2
    a.kernel_runs = max(a.runs, 3 if a.quick else 10)
    dtypes = [DTYPES[d.strip()] for d in a.dtypes.split(",") if d.strip()]
    tm = Timer(dev)
    t_start = time.perf_counter()
    install_ops(a.ops)

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    res = run_header(a, dev, name, fp32_mode, dtypes)
    log(f"torch_bench on {name} ({dev.type}), torch {torch.__version__}, ops {a.ops}, "
        f"{'tiny' if a.tiny else 'full'} model, runs {a.runs}")

    with torch.inference_mode():
        res["peak"] = measure_peaks(dev, tm, a)
    pk = res["peak"]
    log(f"peak: copy {pk['copy_gbs']:.1f} GB/s, SGEMM {pk['sgemm_gflops']:.0f} GFLOP/s ({pk['gemm_n']}^3, no TF32), "
        f"bf16 GEMM {pk['bf16_gemm_gflops']:.0f} GFLOP/s")

    if not a.skip_kernels:
        run_kernels(res, dev, dtypes, tm, a)
    if not a.skip_model:
        run_model(res, dev, dtypes, tm, a)
    res["notes"] = NOTES
    res["wall_s"] = time.perf_counter() - t_start
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    log(f"wrote {a.out} ({res['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

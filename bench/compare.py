#!/usr/bin/env python3
"""dsocr vs PyTorch, side by side: one markdown table and two plots.

  python3 bench/compare.py --dsocr dsocr_bench.json --torch torch_bench.json --out-dir DIR

Reads `dsocr bench all --json` output and bench/torch_bench.py output from the same machine;
prints the table and writes DIR/comparison.md, DIR/kernels_pct_peak.png (per-kernel % of the
measured peak for dsocr, torch fp32 on the same yardstick, the goals of
docs/targets.md) and DIR/end_to_end.png (times and decode tok/s, dsocr vs PyTorch
fp32/bf16). Without matplotlib it says so and writes the table only.

Ratios are written as "dsocr ×": above 1, dsocr is better (faster, or smaller).
"""
import argparse
import json
import math
import os
import sys

# targets.md goals, in % of the measured peak
GOAL_PREFILL_VISION = 40.0  # vision encoder, prefill: of the FP32 GEMM peak
GOAL_SDPA = 50.0  # SDPA, long sequences: of the GEMM peak
GOAL_BANDWIDTH = 70.0  # resize / unfold / norms: of the copy bandwidth

E2E = [  # (label, key, unit, higher is better)
    ("Vision, Base view (1024²)", "vision_base_ms", "ms", False),
    ("Vision, Gundam page (1024² + 6×640²)", "vision_gundam_ms", "ms", False),
    ("Prefill, {P} tokens", "prefill_1k_ms", "ms", False),
    ("Decode, {N} tokens after the prompt", "decode_tok_s", "tok/s", True),
    ("Peak device memory", "peak_mem_mib", "MiB", False),
    ("Weights on the device", "weights_mib", "MiB", False),
]
PCTS = [  # (label, dsocr key, torch key)
    ("Vision Base, % of GEMM peak", "vision_base_pct_sgemm", "vision_base_pct_gemm"),
    ("Vision Gundam, % of GEMM peak", "vision_gundam_pct_sgemm", "vision_gundam_pct_gemm"),
    ("Prefill, % of GEMM peak", "prefill_pct_sgemm", "prefill_pct_gemm"),
    ("Decode, % of bandwidth ceiling", "decode_pct_ceiling", "decode_pct_ceiling"),
]


def kernel_goal(name, bound):
    """The per-kernel goal of targets.md that applies, or None."""
    n = name.lower()
    if bound == "compute" and n.startswith("sdpa") and ("global" in n or "prefill" in n):
        return GOAL_SDPA  # long sequences (4096 SAM tokens, 1024 prompt tokens)
    if bound == "memory" and n.startswith(("resize", "unfold", "layer_norm", "rms_norm", "norm")):
        return GOAL_BANDWIDTH
    return None


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def fmt(v, unit=""):
    v = num(v)
    if v is None:
        return "—"
    if unit == "%":
        return f"{v:.1f}%"
    a = abs(v)
    s = f"{v:.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3g}"
    return s


def ratio(d, t, higher_better):
    """dsocr × (above 1: dsocr better)."""
    d, t = num(d), num(t)
    if not d or not t:
        return "—"
    r = d / t if higher_better else t / d
    return f"{r:.2f}×"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def torch_model(tj, dt):
    return (tj.get("model") or {}).get(dt) or {}


def torch_kernels(tj, dt):
    return {k["name"]: k for k in (tj.get("kernels") or {}).get(dt, [])}


def torch_pct_on_dsocr_yardstick(dk, tk, peak):
    """torch's time for the same work (dsocr's FLOP / byte count) against dsocr's measured peak."""
    ms = num(tk.get("ms")) if tk else None
    if not ms:
        return None
    if dk.get("bound") == "compute":
        p = num(peak.get("sgemm_gflops"))
        return 100.0 * dk.get("gflop", 0) / (ms * 1e-3) / p if p else None
    p = num(peak.get("copy_gbs"))
    return 100.0 * dk.get("gbytes", 0) / (ms * 1e-3) / p if p else None


def dsocr_label(dj):
    """dsocr's column: its weight storage (bf16 matrices or fp32); arithmetic is fp32 either way."""
    w = (dj.get("model") or {}).get("weights", "f32")
    return "dsocr fp32" if w == "f32" else f"dsocr {w}-weights"


def table(dj, tj):
    L = []
    dm = dj.get("model") or {}
    D = dsocr_label(dj)
    t32, t16 = torch_model(tj, "fp32"), torch_model(tj, "bf16")
    dpk, tpk = dj.get("peak") or {}, tj.get("peak") or {}
    L.append(f"# dsocr vs PyTorch on {dj.get('device', '?')}")
    L.append("")
    L.append(f"- dsocr: {dj.get('platform', 'OpenCL')}, driver {dj.get('driver', '?')}, git {dj.get('git_sha', '?')}, "
             f"{dj.get('date', '?')}, {dj.get('runs', '?')} runs, {dj.get('shapes', '?')} shapes")
    L.append(f"- PyTorch: {tj.get('device', '?')}, torch {tj.get('torch', '?')} (CUDA {tj.get('cuda')}), "
             f"ops {tj.get('ops', '?')}, eager, {tj.get('date', '?')}, {tj.get('runs', '?')} runs, "
             f"{tj.get('config', '?')} model")
    if dj.get("device") and tj.get("device") and dj["device"] != tj["device"]:
        L.append(f"- **warning**: different devices ({dj['device']} / {tj['device']})")
    if dj.get("shapes") and tj.get("shapes") and dj["shapes"] != tj["shapes"]:
        L.append(f"- **warning**: different shapes (dsocr {dj['shapes']}, torch {tj['shapes']}): not comparable")
    for n in tj.get("notes") or []:
        L.append(f"- torch note: {n}")
    L.append("")

    L.append("## Peaks (measured in each run)")
    L.append("")
    L.append("| peak | dsocr (OpenCL) | PyTorch (CUDA) |")
    L.append("|---|---:|---:|")
    L.append(f"| copy bandwidth, GB/s (read + write) | {fmt(dpk.get('copy_gbs'))} | {fmt(tpk.get('copy_gbs'))} |")
    L.append(f"| FP32 GEMM, GFLOP/s ({dpk.get('gemm_n', '?')}³ dsocr; {tpk.get('gemm_n', '?')}³ torch, no TF32) | "
             f"{fmt(dpk.get('sgemm_gflops'))} | {fmt(tpk.get('sgemm_gflops'))} |")
    if "sgemm_4096_gflops" in tpk:
        L.append(f"| FP32 GEMM 4096³, GFLOP/s | {fmt(dpk.get('sgemm_gflops') if dpk.get('gemm_n') == 4096 else None)}"
                 f" | {fmt(tpk.get('sgemm_4096_gflops'))} |")
    if "tf32_gemm_gflops" in tpk:
        L.append(f"| TF32 GEMM, GFLOP/s | — | {fmt(tpk.get('tf32_gemm_gflops'))} |")
    L.append(f"| BF16 GEMM, GFLOP/s | — | {fmt(tpk.get('bf16_gemm_gflops'))} |")
    L.append("")

    if dm or t32 or t16:
        P = dm.get("prefill_tokens") or t32.get("prefill_tokens") or t16.get("prefill_tokens") or 1024
        N = dm.get("decode_tokens") or t32.get("decode_tokens") or t16.get("decode_tokens") or 256
        L.append("## End to end (full-size model, random weights)")
        L.append("")
        L.append(f"| measure | {D} | torch fp32 | torch bf16 | dsocr × vs fp32 | dsocr × vs bf16 |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for label, key, unit, hb in E2E:
            d, a, b = dm.get(key), t32.get(key), t16.get(key)
            if num(d) is None and num(a) is None and num(b) is None:
                continue
            L.append(f"| {label.format(P=P, N=N)} ({unit}) | {fmt(d)} | {fmt(a)} | {fmt(b)} | "
                     f"{ratio(d, a, hb)} | {ratio(d, b, hb)} |")
        for label, dk, tk in PCTS:
            L.append(f"| {label} | {fmt(dm.get(dk), '%')} | {fmt(t32.get(tk), '%')} | {fmt(t16.get(tk), '%')} | | |")
        L.append("")
        L.append("dsocr ×: above 1, dsocr is faster (or smaller). Each % is of that run's own peak: dsocr's "
                 "SGEMM and copy; torch fp32 of cuBLAS IEEE-fp32 GEMM, torch bf16 of cuBLAS bf16 GEMM; decode "
                 "ceiling = copy GB/s ÷ 2 ÷ weight bytes per token (fp32: 4 B, bf16: 2 B per weight). "
                 "dsocr's arithmetic is fp32 whatever its weight storage (bf16-weights: the checkpoint's bf16 "
                 "matrices kept as stored and widened exactly in the kernels).")
        tg = num(tpk.get("sgemm_gflops"))
        extra = []
        for key, tkey, label in (("vision_base_ms", "vision_base_tflop", "vision Base"),
                                 ("vision_gundam_ms", "vision_gundam_tflop", "vision Gundam"),
                                 ("prefill_1k_ms", "prefill_tflop", "prefill")):
            ms, tf = num(dm.get(key)), num(dm.get(tkey))
            if tg and ms and tf:
                extra.append(f"{label} {100.0 * tf * 1e12 / (ms * 1e-3) / (tg * 1e9):.1f}%")
        if extra:
            L.append(f"dsocr against cuBLAS's FP32 peak ({fmt(tg)} GFLOP/s) instead: " + ", ".join(extra) + ".")
        L.append("")

    dks = dj.get("kernels") or []
    if dks:
        k32, k16 = torch_kernels(tj, "fp32"), torch_kernels(tj, "bf16")
        L.append("## Kernels (dsocr, fp32 arithmetic, vs torch ops)")
        L.append("")
        L.append("| kernel | bound | dsocr ms | torch fp32 ms | torch bf16 ms | dsocr × vs fp32 | dsocr rate | "
                 "dsocr % peak | goal | torch fp32 % peak |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in dks:
            name, bound = k.get("name", "?"), k.get("bound", "?")
            a, b = k32.get(name, {}), k16.get(name, {})
            rate = (f"{fmt(k.get('gflops'))} GFLOP/s" if bound == "compute" else f"{fmt(k.get('gbs'))} GB/s")
            goal = kernel_goal(name, bound)
            L.append(f"| {name} | {bound} | {fmt(k.get('ms'))} | {fmt(a.get('ms'))} | {fmt(b.get('ms'))} | "
                     f"{ratio(k.get('ms'), a.get('ms'), False)} | {rate} | {fmt(k.get('pct_peak'), '%')} | "
                     f"{fmt(goal, '%') if goal else '—'} | {fmt(torch_pct_on_dsocr_yardstick(k, a, dpk), '%')} |")
        only = [n for n in k32 if n not in {k.get("name") for k in dks}]
        if only:
            L.append("")
            L.append("Measured by torch only: " + ", ".join(f"{n} ({fmt(k32[n].get('ms'))} ms)" for n in only))
        L.append("")
        L.append("torch fp32 % peak: torch's time for dsocr's FLOP/byte count, against dsocr's measured peaks "
                 "(the same yardstick as dsocr's own column). Goals (targets.md): SDPA on long sequences ≥ "
                 f"{GOAL_SDPA:.0f}% of GEMM peak; resize/unfold/norms ≥ {GOAL_BANDWIDTH:.0f}% of bandwidth; vision "
                 f"encoder and prefill ≥ {GOAL_PREFILL_VISION:.0f}% of GEMM peak overall. torch's SAM attention "
                 "reads a full [B,H,T,T] bias (as the official code builds it); dsocr takes the two rel-pos terms.")
        errs = [(n, k["error"]) for dt in ("fp32", "bf16") for n, k in torch_kernels(tj, dt).items() if k.get("error")]
        for n, e in errs:
            L.append(f"- torch {n}: {e}")
        L.append("")
    return "\n".join(L)


# ============================================================================ plots
def plot_kernels(dj, tj, path, plt):
    dks = [k for k in dj.get("kernels") or [] if num(k.get("pct_peak")) is not None]
    if not dks:
        return False
    k32 = torch_kernels(tj, "fp32")
    dpk = dj.get("peak") or {}
    names = [k["name"] for k in dks]
    vals = [k["pct_peak"] for k in dks]
    colors = ["#1f77b4" if k.get("bound") == "compute" else "#ff7f0e" for k in dks]
    tvals = [torch_pct_on_dsocr_yardstick(k, k32.get(k["name"]), dpk) for k in dks]
    fig, ax = plt.subplots(figsize=(10.5, 0.38 * len(dks) + 2.4))
    y = list(range(len(dks)))[::-1]
    ax.barh(y, vals, color=colors, height=0.7)
    for yi, v in zip(y, vals):
        ax.text(v + 0.8, yi, f"{v:.0f}%", va="center", fontsize=8)
    ty = [(yi, t) for yi, t in zip(y, tvals) if t is not None]
    if ty:
        ax.scatter([t for _, t in ty], [yi for yi, _ in ty], marker="D", facecolors="none", edgecolors="black",
                   s=28, zorder=3, label="PyTorch fp32 (same work, same peak)")
    for yi, k in zip(y, dks):
        g = kernel_goal(k["name"], k.get("bound"))
        if g:
            ax.plot([g, g], [yi - 0.4, yi + 0.4], color="red", lw=2.5, zorder=4)
    xmax = max([100.0] + [v * 1.12 for v in vals] + [t * 1.05 for t in tvals if t is not None])
    for g, label, ls in ((GOAL_PREFILL_VISION, "40%: vision / prefill (GEMM)", ":"),
                         (GOAL_SDPA, "50%: SDPA, long sequences", "--"),
                         (GOAL_BANDWIDTH, "70%: resize / unfold / norms (bandwidth)", "-.")):
        ax.axvline(g, color="grey", ls=ls, lw=1, label=label)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("% of measured peak (compute-bound: SGEMM GFLOP/s; memory-bound: copy GB/s)")
    ax.set_title(f"dsocr kernels on {dj.get('device', '?')}: % of peak (SGEMM {fmt(dpk.get('sgemm_gflops'))} GFLOP/s, "
                 f"copy {fmt(dpk.get('copy_gbs'))} GB/s)", fontsize=10)
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D
    h, lab = ax.get_legend_handles_labels()
    h = [Patch(color="#1f77b4"), Patch(color="#ff7f0e"), Line2D([], [], color="red", lw=2.5)] + h
    lab = ["dsocr, compute-bound", "dsocr, memory-bound", "this kernel's goal"] + lab
    ax.legend(h, lab, fontsize=7, loc="upper center", bbox_to_anchor=(0.45, -0.07), ncol=4, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def plot_e2e(dj, tj, path, plt):
    dm = dj.get("model") or {}
    t32, t16 = torch_model(tj, "fp32"), torch_model(tj, "bf16")
    systems = [(dsocr_label(dj), dm, "#2ca02c"), ("PyTorch fp32", t32, "#7f7f7f"), ("PyTorch bf16", t16, "#bcbd22")]
    measures = [("Base view", "vision_base_ms"), ("Gundam page", "vision_gundam_ms"), ("Prefill 1k", "prefill_1k_ms")]
    if not any(num(s.get(k)) for _, s, _ in systems for _, k in measures + [("", "decode_tok_s")]):
        return False
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [3, 1.4]})
    w = 0.26
    allv = []
    for i, (label, src, col) in enumerate(systems):
        xs, vs = [], []
        for j, (_, key) in enumerate(measures):
            v = num(src.get(key))
            if v:
                xs.append(j + (i - 1) * w)
                vs.append(v)
        allv += vs
        bars = ax.bar(xs, vs, w, label=label, color=col)
        for b_, v in zip(bars, vs):
            ax.text(b_.get_x() + b_.get_width() / 2, v, fmt(v), ha="center", va="bottom", fontsize=7)
    if allv and max(allv) / min(allv) > 20:
        ax.set_yscale("log")
        ax.set_ylim(bottom=min(allv) / 3)
    ax.set_xticks(range(len(measures)))
    ax.set_xticklabels([m for m, _ in measures])
    ax.set_ylabel("ms (lower is better)")
    ax.set_title("time per view / page / prompt")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)

    vals, cols, labs = [], [], []
    for label, src, col in systems:
        v = num(src.get("decode_tok_s"))
        if v:
            vals.append(v)
            cols.append(col)
            labs.append(label.replace(" ", "\n"))
    bars = bx.bar(range(len(vals)), vals, color=cols)
    for b_, v in zip(bars, vals):
        bx.text(b_.get_x() + b_.get_width() / 2, v, fmt(v), ha="center", va="bottom", fontsize=8)
    ceil = [(num(dm.get("decode_ceiling_tok_s")), "dsocr " + dm.get("weights", "f32") + " ceiling", "-"),
            (num(t16.get("decode_ceiling_tok_s")), "bf16 ceiling", "--")]
    ceil = [c for c in ceil if c[0]]
    for c, label, ls in ceil:
        bx.axhline(c, color="red", ls=ls, lw=1, label=f"{label} {c:.0f}")
    if vals and ceil and max(c for c, _, _ in ceil) / min(vals) > 20:
        bx.set_yscale("log")
        bx.set_ylim(bottom=min(vals) / 3)
    bx.set_xticks(range(len(vals)))
    bx.set_xticklabels(labs, fontsize=8)
    bx.set_ylabel("tok/s (higher is better)")
    bx.set_title("decode, batch 1")
    if ceil:
        bx.legend(fontsize=7, loc="center right")
    bx.grid(axis="y", alpha=0.3)
    fig.suptitle(f"dsocr vs PyTorch eager on {dj.get('device') or tj.get('device', '?')} "
                 f"(full-size DeepSeek-OCR v1, random weights)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsocr", required=True, help="dsocr bench --json output")
    ap.add_argument("--torch", required=True, help="bench/torch_bench.py output")
    ap.add_argument("--out-dir", default=".")
    a = ap.parse_args(argv)
    dj, tj = load(a.dsocr), load(a.torch)
    os.makedirs(a.out_dir, exist_ok=True)
    md = table(dj, tj)
    print(md)
    md_path = os.path.join(a.out_dir, "comparison.md")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(md + "\n")
    print(f"wrote {md_path}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plots skipped", file=sys.stderr)
        return 0
    for fn, name in ((plot_kernels, "kernels_pct_peak.png"), (plot_e2e, "end_to_end.png")):
        p = os.path.join(a.out_dir, name)
        print(f"wrote {p}" if fn(dj, tj, p, plt) else f"{name}: nothing to plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())

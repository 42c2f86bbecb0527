#!/usr/bin/env python3
"""DeepSeek-OCR-2 in transformers' native implementation (`deepseek_ocr2`, transformers 5.x): a
cross-check against the reference (reference/dsocr_ref/ocr2.py) and the PyTorch timings of v2.

  python3 bench/ocr2_transformers.py --check [--full] [--ckpt DIR] [--device cuda|cpu] [--out F.jsonl]
  python3 bench/ocr2_transformers.py --bench [--tiny] [--dtypes fp32,bf16] [--runs N] [--quick]
                                     [--device cuda|cpu] [--out F.json]

--check: the reference's v2 model with random weights (dsocr_ref.checkpoint.random_init's rule,
seed 4321; or the official-layout checkpoint --ckpt DIR), its state_dict (the official names) mapped
to transformers' names (bench/ocr2_transformers_map.py), loaded strictly into
DeepseekOcr2ForConditionalGeneration built from the equivalent DeepseekOcr2Config; then, in fp32 on
the same inputs (a 1024 global view, 6 tiles of 768 in a 2 cols x 3 rows grid, a prompt holding the
6*144 + 256 + 1 image tokens): SAM's output and the encoder's query outputs of the global view, the
projected embeddings of the global view and of the tiles, the whole image-token sequence (tiles,
global, view separator) and the logits over the prompt. Tiny config by default (--full: the
official sizes from tests/data/official/deepseek-ocr-2/config.json; the reference then runs on the
CPU for minutes). The reference always runs on the CPU as it is; transformers on --device. One JSON
object per line on stdout and in --out; exit 1 when any error exceeds --tol or a key does not map.

--bench: the full-size v2 model (official config; --tiny: the tiny one) with random weights
(the same rule, seed 1234, drawn on the device) in transformers' native implementation, per dtype:
vision per global view (1024) and per page (1024 + 6 x 768, as `dsocr bench model --arch ocr2`,
reported under vision_gundam_* as dsocr does), prefill of 1024 tokens (logits of the last token; also
all logits), decode tok/s of 256 steps after the 1k prompt with transformers' DynamicCache (argmax on
the device, no host sync in the loop), peak CUDA memory; medians of --runs after warm-up, CUDA
events. JSON as bench/torch_bench.py writes it (same field names; bench/compare.py can read it).

No network: the configs are built locally, nothing is downloaded.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # torch_bench_* and ocr2_transformers_map beside this file

import torch  # noqa: E402

from ocr2_transformers_map import build_hf, report_ok, vision_flop_v2  # noqa: E402
from torch_bench_common import (DTYPES, ROOT, Timer, cfgmod, cpu_name, current_mib, decode_figures,  # noqa: E402
                                dt_name, git_sha, modelmod, peak_mib, reset_peak, run_identity, set_fp32_ieee)
from torch_bench_model import add_model_pcts, decode_params, prefill_flop, random_init_fn  # noqa: E402

OFFICIAL_CONFIGS = [os.path.join(ROOT, "tests", "data", "official", "deepseek-ocr-2", "config.json"),
                    os.path.join(os.path.dirname(ROOT), "shared", "official", "deepseek-ocr-2", "config.json")]
TINY_VOCAB = 1024
IMAGE_TOKEN_ID = 128815  # "<image>" in the official tokenizer_config.json
GLOBAL_SIDE, TILE_SIDE, GRID = 1024, 768, (2, 3)  # grid: cols x rows, 6 tiles
# fp32 tolerance, max |hf - ref| / max |ref|. Both sides are IEEE fp32 (no TF32), so what remains is
# summation order (im2col + matmul vs cuDNN/oneDNN convolutions, written-out softmax vs SDPA,
# per-expert loops): ~1e-6 per op, growing to ~1e-5 over SAM + 24 encoder + 12 LM layers at the
# full size. A wrong name, transpose, mask block, RoPE base or layout gives errors of order 1e-1..1.
# 1e-3 keeps two decades of margin above the noise (also for a rare MoE near-tie, where a 1e-6
# difference can swap the 6th and 7th expert of one token) and stays two decades below a real bug.
TOL = 1e-3


def elog(s):
    print(s, file=sys.stderr, flush=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="reference vs transformers, fp32")
    mode.add_argument("--bench", action="store_true", help="timings of transformers' implementation")
    ap.add_argument("--tiny", action="store_true", help="the tiny v2 config (default of --check)")
    ap.add_argument("--full", action="store_true", help="the official sizes (default of --bench)")
    ap.add_argument("--ckpt", default=None, help="--check: an official-layout v2 checkpoint instead of random weights")
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--out", default=None, help="default ocr2_transformers_check.jsonl / ocr2_transformers_bench.json")
    ap.add_argument("--tol", type=float, default=TOL)
    ap.add_argument("--attn", default=None, help="transformers attn_implementation (default: its own, sdpa)")
    ap.add_argument("--experts", default=None, help="transformers experts_implementation (default: its own)")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per measure, median (default 5; --quick 2)")
    ap.add_argument("--decode-runs", type=int, default=None, help="timed 256-token decodes (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--skip-peaks", action="store_true", help="--bench: no copy / GEMM peaks (no %% of peak)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--batch", default=None,
                    help="--bench: only batched greedy decode at these batch sizes (e.g. 1,8,32,64; "
                         "bench/transformers_batch.py), the peer of dsocr bench model --batch")
    ap.add_argument("--batch-steps", type=int, default=256, help="--batch: decode steps per size")
    a = ap.parse_args(argv)
    if a.tiny and a.full:
        ap.error("--tiny and --full exclude each other")
    a.tiny = a.tiny or (a.check and not a.full)
    if a.ckpt and not a.check:
        ap.error("--ckpt is for --check")
    a.out = a.out or ("ocr2_transformers_check.jsonl" if a.check else "ocr2_transformers_bench.json")
    return a


# ============================================================================ config and weights
def load_config(a):
    """-> (reference Config, where it came from, image token id)."""
    if a.ckpt:
        img, tc = None, os.path.join(a.ckpt, "tokenizer_config.json")
        if os.path.exists(tc):
            with open(tc, encoding="utf-8") as f:
                added = json.load(f).get("added_tokens_decoder", {})
            img = next((int(k) for k, v in added.items() if v.get("content") == "<image>"), None)
        return cfgmod.load(os.path.join(a.ckpt, "config.json")), a.ckpt, img
    if a.tiny:
        return cfgmod.from_dict(cfgmod.tiny_config_dict_v2(TINY_VOCAB)), "config.tiny_config_dict_v2", TINY_VOCAB - 2
    for p in OFFICIAL_CONFIGS:
        if os.path.exists(p):
            return cfgmod.load(p), os.path.relpath(p, ROOT), IMAGE_TOKEN_ID
    raise FileNotFoundError(f"no official DeepSeek-OCR-2 config.json in {OFFICIAL_CONFIGS}")


def build_reference(c, dev, seed, ckpt=None):
    """dsocr_ref's DeepseekOCR2 (fp32) on `dev`: random_init's rule (drawn on `dev`) or a checkpoint."""
    m = modelmod.build(c, device=str(dev))
    if ckpt:
        from dsocr_ref import checkpoint  # imports `tokenizers` (a transformers dependency)
        sd = {k: v.to(torch.float32) for k, v in checkpoint.read_state_dict(ckpt).items()}
        m.load_state_dict(sd, strict=True)
    else:
        random_init_fn(dev)(m, seed)
    m.eval()
    m.requires_grad_(False)
    return m


def image_token_id(c, given):
    if given is not None:
        return given
    return IMAGE_TOKEN_ID if c.vocab_size > IMAGE_TOKEN_ID else c.vocab_size - 2


def official_key_report(m, c):
    """At the official sizes: the reference's state_dict keys against the release's index."""
    for p in OFFICIAL_CONFIGS:
        idx = os.path.join(os.path.dirname(p), "model.safetensors.index.json")
        if os.path.exists(idx) and cfgmod.load(p).to_dict() == c.to_dict():
            with open(idx) as f:
                want = set(json.load(f)["weight_map"])
            have = set(m.state_dict())
            return {"check": "official_keys", "index": os.path.relpath(idx, ROOT), "n": len(want),
                    "not_in_reference": sorted(want - have)[:20], "not_in_index": sorted(have - want)[:20],
                    "ok": want == have}
    return None


# ============================================================================ --check
def compare(name, ref, got, tol):
    ref = ref.detach().float().cpu()
    got = got.detach().float().cpu()
    rec = {"check": name, "shape": list(ref.shape)}
    if ref.shape != got.shape:
        rec.update(got_shape=list(got.shape), ok=False)
        return rec
    d = (got - ref).abs()
    max_ref = float(ref.abs().max())
    rec.update(max_abs=float(d.max()), mean_abs=float(d.mean()), max_ref=max_ref,
               max_rel=float(d.max()) / max_ref if max_ref else float(d.max()), tol=tol)
    rec["ok"] = bool(rec["max_rel"] <= tol)
    return rec


def check_inputs(c, img_id, seed=3):
    """Pixels in [-1, 1] (the normalised range), and [BOS, 5 text, image tokens, 8 text] ids."""
    g = torch.Generator().manual_seed(seed)
    glob = torch.rand(1, 3, GLOBAL_SIDE, GLOBAL_SIDE, generator=g) * 2 - 1
    tiles = torch.rand(GRID[0] * GRID[1], 3, TILE_SIDE, TILE_SIDE, generator=g) * 2 - 1
    n_img = tiles.shape[0] * (TILE_SIDE // 64) ** 2 + (GLOBAL_SIDE // 64) ** 2 + 1
    text = torch.randint(2, c.vocab_size, (13,), generator=g)
    text[text == img_id] = 2
    ids = torch.cat([torch.tensor([c.bos_token_id]), text[:5], torch.full((n_img,), img_id), text[5:]])
    return glob, tiles, ids


def hf_views(hf, glob, tiles):
    """transformers' vision outputs: SAM (global), encoder query outputs and projections per view,
    and the image-token sequence of get_image_features."""
    m = hf.model
    out = m.get_image_features(pixel_values=glob, pixel_values_local=tiles, num_local_patches=[tiles.shape[0]],
                               return_dict=True)
    return {"global.sam": m.vision_tower.sam_encoder(glob).last_hidden_state,
            "global.qwen2": out.last_hidden_state, "tiles.qwen2": out.local_last_hidden_state,
            "global.projected": m.multi_modal_projector(out.last_hidden_state),
            "tiles.projected": m.multi_modal_projector(out.local_last_hidden_state),
            "sequence": out.pooler_output[0]}


def check_forward(ref, hf, c, dev, img_id, tol):
    glob, tiles, ids = check_inputs(c, img_id)
    recs = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        taps = {}
        ref_seq = ref.vision_embeddings(glob, tiles, GRID, taps=taps)
        elog(f"reference vision (CPU): {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        hv = hf_views(hf, glob.to(dev), tiles.to(dev))
        elog(f"transformers vision ({dev.type}): {time.perf_counter() - t0:.1f} s")
        for key, name in (("global.sam", "sam_global"), ("global.qwen2", "encoder_global"),
                          ("tiles.qwen2", "encoder_tiles"), ("global.projected", "vision_global"),
                          ("tiles.projected", "vision_tiles")):
            recs.append(compare(name, taps[key], hv[key], tol))
        recs.append(compare("vision_sequence", ref_seq, hv["sequence"], tol))
        del hv, taps
        t0 = time.perf_counter()
        ref_logits = ref.logits(ids, ref_seq, img_id)
        elog(f"reference logits over {ids.shape[0]} tokens: {time.perf_counter() - t0:.1f} s")
        hf_logits = hf(input_ids=ids[None].to(dev), pixel_values=glob.to(dev), pixel_values_local=tiles.to(dev),
                       num_local_patches=[tiles.shape[0]]).logits[0]
        rec = compare("logits", ref_logits, hf_logits, tol)
        rec["argmax_agree"] = float((ref_logits.argmax(-1) == hf_logits.argmax(-1).cpu()).float().mean())
        rec["tokens"] = int(ids.shape[0])
        rec["image_tokens"] = int((ids == img_id).sum())
        recs.append(rec)
        del hf_logits
        recs.append(compare("logits_kv_cache", ref_logits[-9:], hf_cached_tail(hf, ids, glob, tiles, dev, 8), tol))
    return recs


def hf_cached_tail(hf, ids, glob, tiles, dev, steps):
    """The path --bench times: prefill (image included) with transformers' cache, then `steps`
    one-token decodes; -> the logits of the last prefill row and of each step [steps + 1, vocab]."""
    n = ids.shape[0] - steps
    ids = ids.to(dev)
    out = hf(input_ids=ids[None, :n], pixel_values=glob.to(dev), pixel_values_local=tiles.to(dev),
             num_local_patches=[tiles.shape[0]], use_cache=True, logits_to_keep=1)
    rows, cache = [out.logits[0, -1]], out.past_key_values
    for i in range(n, ids.shape[0]):
        out = hf(input_ids=ids[None, i:i + 1], past_key_values=cache, use_cache=True)
        rows.append(out.logits[0, -1])
    return torch.stack(rows)


def run_check(a, dev):
    c, src, img = load_config(a)
    img = image_token_id(c, img)
    cpu = torch.device("cpu")
    t0 = time.perf_counter()
    ref = build_reference(c, cpu, 4321, a.ckpt)
    elog(f"reference v2 ({src}): {sum(p.numel() for p in ref.parameters()) / 1e6:.1f} M parameters, "
         f"{time.perf_counter() - t0:.1f} s")
    import transformers
    recs = [{"check": "header", "config": "tiny" if a.tiny else "full", "config_source": src, "device": dev.type,
             "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(),
             "torch": torch.__version__, "transformers": transformers.__version__, "git_sha": git_sha(),
             "weights": a.ckpt or "random_init seed 4321", "image_token_id": img, "tol": a.tol}]
    keys = official_key_report(ref, c) if not a.tiny else None
    if keys:
        recs.append(keys)
    t0 = time.perf_counter()
    hf, rep = build_hf(c, ref.state_dict(), dev, img, a.attn, a.experts)
    elog(f"transformers model built and loaded on {dev.type}: {time.perf_counter() - t0:.1f} s")
    recs.append({"check": "weights", "ok": report_ok(rep), "n_official": len(ref.state_dict()),
                 "n_transformers": len(hf.state_dict()), **rep})
    if recs[-1]["ok"]:
        recs += check_forward(ref, hf, c, dev, img, a.tol)
    bad = [r["check"] for r in recs[1:] if not r.get("ok")]
    recs.append({"check": "summary", "ok": not bad, "failed": bad})
    with open(a.out, "w") as f:
        for r in recs:
            line = json.dumps(r)
            print(line, flush=True)
            f.write(line + "\n")
    elog(f"wrote {a.out}: {'ok' if not bad else 'FAILED ' + ', '.join(bad)}")
    return 1 if bad else 0


# ============================================================================ --bench
def timed_model(a, c, dev, img):
    """transformers' model with random_init's weights (seed 1234, drawn on the device)."""
    t0 = time.perf_counter()
    ref = build_reference(c, dev, 1234)
    sd = ref.state_dict()
    hf, rep = build_hf(c, sd, dev, img, a.attn, a.experts)
    del ref, sd
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    if not report_ok(rep):
        raise RuntimeError(f"weights do not map: {rep}")
    return hf, rep, time.perf_counter() - t0


def bench_inputs(c, dev, dt, img, tiny):
    P = 128 if tiny else 1024
    gen = torch.Generator(device=dev).manual_seed(5)
    glob = (torch.rand(1, 3, GLOBAL_SIDE, GLOBAL_SIDE, generator=gen, device=dev) * 2 - 1).to(dt)
    tiles = (torch.rand(6, 3, TILE_SIDE, TILE_SIDE, generator=gen, device=dev) * 2 - 1).to(dt)
    ids = torch.randint(2, c.vocab_size, (1, P), generator=gen, device=dev)
    ids[ids == img] = 2  # a text prompt: no image placeholder
    return glob, tiles, ids


def bench_vision(hf, glob, tiles, r, dev, tm, a, dt):
    vt = hf.model
    r["vision_base_ms"], r["vision_base_runs_ms"] = tm.median(
        lambda: vt.get_image_features(pixel_values=glob, return_dict=True), a.runs, a.warmup)
    elog(f"  {dt_name(dt)} vision global view (1024)     {r['vision_base_ms']:10.2f} ms")
    r["vision_gundam_ms"], r["vision_gundam_runs_ms"] = tm.median(
        lambda: vt.get_image_features(pixel_values=glob, pixel_values_local=tiles, num_local_patches=[6],
                                      return_dict=True), a.runs, a.warmup)
    elog(f"  {dt_name(dt)} vision page (1024 + 6x768)    {r['vision_gundam_ms']:10.2f} ms")
    r["vision_peak_mem_mib"] = peak_mib(dev)


def bench_lm(hf, ids, r, dev, tm, a, dt):
    P, N = ids.shape[1], (16 if a.tiny else 256)
    reset_peak(dev)
    r["prefill_tokens"] = P
    r["prefill_1k_ms"], r["prefill_runs_ms"] = tm.median(
        lambda: hf(input_ids=ids, use_cache=True, logits_to_keep=1), a.runs, a.warmup)
    r["prefill_1k_all_logits_ms"], _ = tm.median(lambda: hf(input_ids=ids, use_cache=True), a.runs, 1)
    elog(f"  {dt_name(dt)} prefill {P} tokens            {r['prefill_1k_ms']:10.2f} ms "
         f"(all logits {r['prefill_1k_all_logits_ms']:.2f} ms)")
    r["prefill_peak_mem_mib"] = peak_mib(dev)
    reset_peak(dev)

    def decode_run(steps):
        out = hf(input_ids=ids, use_cache=True, logits_to_keep=1)
        state = {"cache": out.past_key_values, "tok": out.logits[0, -1].argmax()}

        def run():
            t = state["tok"]
            for _ in range(steps):
                o = hf(input_ids=t.view(1, 1), past_key_values=state["cache"], use_cache=True, logits_to_keep=1)
                t = o.logits[0, -1].argmax()
            state["tok"] = t
        tm.sync()
        return tm.once(run)

    decode_figures(r, decode_run, N, a.decode_runs, dev, f"  {dt_name(dt)} decode {N} tokens              ", elog)


def bench_dtype(hf, c, dev, dt, tm, a, img):
    r = {"arch": "ocr2", "tile_side": TILE_SIDE, "weights": dt_name(dt)}
    glob, tiles, ids = bench_inputs(c, dev, dt, img, a.tiny)
    r["weights_mib"] = current_mib(dev)
    with torch.inference_mode():
        reset_peak(dev)
        bench_vision(hf, glob, tiles, r, dev, tm, a, dt)
        bench_lm(hf, ids, r, dev, tm, a, dt)
    peaks = [r[k] for k in ("vision_peak_mem_mib", "prefill_peak_mem_mib", "decode_peak_mem_mib")]
    r["peak_mem_mib"] = max(peaks) if peaks[0] is not None else None
    es = torch.tensor([], dtype=dt).element_size()
    r["vision_base_tflop"] = vision_flop_v2(c, GLOBAL_SIDE) / 1e12
    r["vision_gundam_tflop"] = (vision_flop_v2(c, GLOBAL_SIDE) + 6 * vision_flop_v2(c, TILE_SIDE)) / 1e12
    r["prefill_tflop"] = prefill_flop(c, ids.shape[1]) / 1e12
    r["decode_gbytes_per_token"] = decode_params(c) * es / 1e9
    return r


def bench_header(a, dev, src, fp32_mode, dtypes, rep):
    import transformers
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    return {
        **run_identity("bench/ocr2_transformers.py", name, dev, a.tiny),
        "transformers": transformers.__version__,
        "arch": "ocr2",
        "config_source": src,
        "ops": "transformers deepseek_ocr2 (eager PyTorch, no torch.compile)",
        "attn_implementation": rep["config"]["attn_implementation"],
        "experts_implementation": rep["config"]["experts_implementation"],
        "fp32": fp32_mode,
        "runs": a.runs, "decode_runs": a.decode_runs, "warmup": a.warmup,
        "dtypes": [dt_name(d) for d in dtypes],
    }


def run_bench(a, dev):
    a.runs = a.runs or (2 if a.quick else 5)
    a.decode_runs = a.decode_runs or (1 if a.quick else 3)
    a.warmup = 1 if a.quick else 2
    a.kernel_runs = max(a.runs, 3 if a.quick else 10)
    dtypes = [DTYPES[d.strip()] for d in a.dtypes.split(",") if d.strip()]
    fp32_mode = set_fp32_ieee()
    tm = Timer(dev)
    t_start = time.perf_counter()
    c, src, img = load_config(a)
    img = image_token_id(c, img)
    hf, rep, init_s = timed_model(a, c, dev, img)
    res = bench_header(a, dev, src, fp32_mode, dtypes, rep)
    res["model_info"] = {"params": sum(p.numel() for p in hf.parameters()), "init_s": init_s,
                         "init": "dsocr_ref.checkpoint.random_init (seed 1234), on the device, mapped to transformers",
                         "global_view": GLOBAL_SIDE, "tiles": f"6 x {TILE_SIDE}, grid 2 cols x 3 rows",
                         "hf_config": rep["config"]}
    elog(f"ocr2_transformers on {res['device']}: {res['model_info']['params'] / 1e9:.3f} B parameters, "
         f"built in {init_s:.1f} s; attn {res['attn_implementation']}, experts {res['experts_implementation']}")
    if not a.skip_peaks:
        from torch_bench_kernels import measure_peaks
        with torch.inference_mode():
            res["peak"] = measure_peaks(dev, tm, a)
    res["model"] = {}
    batches = [int(x) for x in a.batch.split(",")] if a.batch else []
    for dt in dtypes:
        if next(hf.parameters()).dtype != dt:
            hf.to(dt)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
        if batches:
            from transformers_batch import bench_batch
            elog(f"  {dt_name(dt)} batched decode, {a.batch_steps} steps after 1,024 tokens")
            res.setdefault("batch", {})[dt_name(dt)] = bench_batch(hf, c, dev, tm, batches, a.batch_steps, img, elog)
            continue
        r = bench_dtype(hf, c, dev, dt, tm, a, img)
        if "peak" in res:
            add_model_pcts(r, res["peak"], dt)
        res["model"][dt_name(dt)] = r
    res["wall_s"] = time.perf_counter() - t_start
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    elog(f"wrote {a.out} ({res['wall_s']:.0f} s)")
    return 0


def main(argv=None):
    a = parse_args(argv)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if a.threads:
        torch.set_num_threads(a.threads)
    set_fp32_ieee()
    return run_check(a, dev) if a.check else run_bench(a, dev)


if __name__ == "__main__":
    sys.exit(main())

"""bench/torch_bench.py's model side: configs, random weights, FLOP/byte counts as bench/model.cpp
counts them, prefill, and the end-to-end measurements (vision, prefill, decode, memory)."""
import ast
import math
import os
import time

import torch

from torch_bench_common import (ROOT, cfgmod, current_mib, decode_figures, dt_name, log, modelmod, peak_mib,
                                reset_peak)


# ============================================================================ random weights
def random_init_fn(device):
    """dsocr_ref.checkpoint.random_init, compiled from checkpoint.py's source (importing the module
    would import dsocr_ref.tokenizer and with it `tokenizers`), drawing on `device`."""
    path = os.path.join(ROOT, "reference", "dsocr_ref", "checkpoint.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "random_init"]
    if not fn:
        raise RuntimeError(f"{path}: no random_init to reuse")

    class TorchOn:  # torch, with Generator and randn on `device`
        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def Generator(*a, **k):
            return torch.Generator(device=device)

        @staticmethod
        def randn(*shape, **k):
            return torch.randn(*shape, device=device, **k)

    ns = {"math": math, "torch": TorchOn(), "modelmod": modelmod}
    exec(compile(ast.Module(body=fn, type_ignores=[]), path, "exec"), ns)
    return ns["random_init"]



# ============================================================================ model
def full_config():
    return cfgmod.Config()  # the defaults are the official v1 sizes (checked against config.json in --check)


def tiny_config():
    return cfgmod.from_dict(cfgmod.tiny_config_dict(1024))


def vision_flop(c, S):
    """bench/model.cpp vision_flop: multiply-adds ×2 of one view through SAM + CLIP + projector."""
    g = S // c.sam_patch_size
    T, C, M = g * g, c.sam_width, int(c.sam_width * c.sam_mlp_ratio)
    f = 2.0 * T * C * 3 * c.sam_patch_size ** 2
    ws = c.sam_window_size
    nw = (g + ws - 1) // ws
    tw = nw * nw * ws * ws
    for b in range(c.sam_layers):
        glob = b in c.sam_global_blocks
        ta, keys = (T, T) if glob else (tw, ws * ws)
        f += 2.0 * ta * C * 4 * C + 4.0 * ta * keys * C + 2.0 * ta * (2 * g if glob else 2 * ws) * C
        f += 2.0 * T * C * 2 * M
    o, (d1, d2) = c.sam_out_chans, c.sam_downsample_channels
    f += 2.0 * T * C * o + 2.0 * T * o * o * 9 + 2.0 * (T // 4) * o * 9 * d1 + 2.0 * (T // 16) * d1 * 9 * d2
    tc, cc, mc = T // 16 + 1, c.clip_width, int(c.clip_width * c.clip_mlp_ratio)
    f += c.clip_layers * (2.0 * tc * cc * 4 * cc + 4.0 * tc * tc * cc + 2.0 * tc * cc * 2 * mc)
    f += 2.0 * (T // 16) * c.projector_input_dim * c.n_embed
    return f


def prefill_flop(c, T):
    """bench/model.cpp prefill_flop (lm_head for the last token only)."""
    D, hd, H, Hkv = c.hidden_size, c.head_dim, c.num_attention_heads, c.num_key_value_heads
    f = 0.0
    for layer in range(c.num_hidden_layers):
        f += 2.0 * T * D * (H + 2 * Hkv) * hd + 2.0 * T * H * hd * D + 4.0 * H * hd * 0.5 * T * (T + 1)
        if c.is_moe_layer(layer):
            f += (6.0 * T * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts)
                  + 2.0 * T * D * c.n_routed_experts)
        else:
            f += 6.0 * T * D * c.intermediate_size
    return f + 2.0 * D * c.vocab_size


def decode_params(c):
    """bench/model.cpp decode_bytes / 4: weights read per generated token."""
    D, hd, H, Hkv = c.hidden_size, c.head_dim, c.num_attention_heads, c.num_key_value_heads
    w = 0.0
    for layer in range(c.num_hidden_layers):
        w += float(D) * (H + 2 * Hkv) * hd + float(H) * hd * D
        w += (3.0 * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts) + D * c.n_routed_experts
              if c.is_moe_layer(layer) else 3.0 * D * c.intermediate_size)
    return w + float(D) * c.vocab_size


def build_model(c, dev):
    t0 = time.perf_counter()
    m = modelmod.build(c, device=str(dev))
    random_init_fn(dev)(m, 1234)
    m.eval()
    m.requires_grad_(False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return m, time.perf_counter() - t0


def prefill(m, ids, positions, caches):
    """m.decode's layer loop with lm_head on the last token only (dsocr's prefill)."""
    x = m.model.embed_tokens.weight[ids]
    for i, layer in enumerate(m.model.layers):
        x = layer(x, positions, None, "", caches[i])
    return m.lm_head(m.model.norm(x[-1:])).float()


def bench_model(m, c, dev, dt, tm, a):
    """End-to-end numbers for the model already in dtype dt."""
    r = {}
    P, N = (128, 16) if a.tiny else (1024, 256)
    gen = torch.Generator(device=dev).manual_seed(5)
    size = c.sam_image_size
    tile = 640
    glob = (torch.rand(1, 3, size, size, generator=gen, device=dev) * 2 - 1).to(dt)
    tiles = (torch.rand(6, 3, tile, tile, generator=gen, device=dev) * 2 - 1).to(dt)
    ids = torch.randint(2, c.vocab_size, (P,), generator=gen, device=dev)
    positions = torch.arange(P + N + 8, device=dev)
    nl = len(m.model.layers)
    peaks = []
    r["weights_mib"] = current_mib(dev)
    with torch.inference_mode():
        reset_peak(dev)
        r["vision_base_ms"], r["vision_base_runs_ms"] = tm.median(lambda: m.vision_embeddings(glob), a.runs, a.warmup)
        log(f"  {dt_name(dt)} vision Base view      {r['vision_base_ms']:10.2f} ms")
        r["vision_gundam_ms"], r["vision_gundam_runs_ms"] = tm.median(
            lambda: m.vision_embeddings(glob, tiles, (2, 3)), a.runs, a.warmup)
        log(f"  {dt_name(dt)} vision Gundam page    {r['vision_gundam_ms']:10.2f} ms")
        r["vision_peak_mem_mib"] = peak_mib(dev)
        peaks.append(r["vision_peak_mem_mib"])

        reset_peak(dev)
        r["prefill_tokens"] = P
        r["prefill_1k_ms"], r["prefill_runs_ms"] = tm.median(
            lambda: prefill(m, ids, positions[:P], [{} for _ in range(nl)]), a.runs, a.warmup)
        r["prefill_1k_all_logits_ms"], _ = tm.median(
            lambda: m.decode(m.model.embed_tokens.weight[ids], positions[:P], kv_caches=[{} for _ in range(nl)]),
            a.runs, 1)
        log(f"  {dt_name(dt)} prefill {P} tokens    {r['prefill_1k_ms']:10.2f} ms "
            f"(all logits {r['prefill_1k_all_logits_ms']:.2f} ms)")
        r["prefill_peak_mem_mib"] = peak_mib(dev)
        peaks.append(r["prefill_peak_mem_mib"])

        reset_peak(dev)

        def decode_run(steps):
            caches = [{} for _ in range(nl)]
            tok = prefill(m, ids, positions[:P], caches)[-1].argmax()
            state = {"tok": tok}

            def run():
                t = state["tok"]
                for i in range(steps):
                    x = m.model.embed_tokens.weight[t.view(1)]
                    t = m.decode(x, positions[P + i:P + i + 1], kv_caches=caches)[-1].argmax()
                state["tok"] = t
            tm.sync()
            return tm.once(run)

        decode_figures(r, decode_run, N, a.decode_runs, dev, f"  {dt_name(dt)} decode {N} tokens      ", log)
        peaks.append(r["decode_peak_mem_mib"])
    r["peak_mem_mib"] = max(peaks) if peaks[0] is not None else None

    es = torch.tensor([], dtype=dt).element_size()
    r["vision_base_tflop"] = vision_flop(c, size) / 1e12
    r["vision_gundam_tflop"] = (vision_flop(c, size) + 6 * vision_flop(c, tile)) / 1e12
    r["prefill_tflop"] = prefill_flop(c, P) / 1e12
    r["decode_gbytes_per_token"] = decode_params(c) * es / 1e9
    return r


def add_model_pcts(r, peak, dt):
    """% of this run's own peaks: the GEMM rate of the dtype (IEEE fp32 / bf16), copy bandwidth."""
    g = peak.get("sgemm_gflops" if dt == torch.float32 else "bf16_gemm_gflops", 0) * 1e9
    pct = lambda tflop, ms: 100.0 * tflop * 1e12 / (ms * 1e-3) / g if g and ms else None  # noqa: E731
    r["vision_base_pct_gemm"] = pct(r["vision_base_tflop"], r["vision_base_ms"])
    r["vision_gundam_pct_gemm"] = pct(r["vision_gundam_tflop"], r["vision_gundam_ms"])
    r["prefill_pct_gemm"] = pct(r["prefill_tflop"], r["prefill_1k_ms"])
    ceiling = peak["copy_gbs"] / 2 / r["decode_gbytes_per_token"]  # reads only: half the copy traffic
    r["decode_ceiling_tok_s"] = ceiling
    r["decode_pct_ceiling"] = 100.0 * r["decode_tok_s"] / ceiling

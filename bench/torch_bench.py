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
import ast
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "reference"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dsocr_ref import config as cfgmod  # noqa: E402
from dsocr_ref import model as modelmod  # noqa: E402
from dsocr_ref import ops  # noqa: E402

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
NOTES = []


def note(s):
    if s not in NOTES:
        NOTES.append(s)


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


# ============================================================================ ops
ORIG_OPS = {n: getattr(ops, n) for n in ("linear", "conv2d", "layer_norm", "gelu", "silu", "softmax", "sdpa",
                                          "unfold", "resize_bicubic_aa", "resize_linear", "rope_cos_sin", "rope",
                                          "moe")}
ORIG_WINDOW_PARTITION = modelmod.window_partition
ORIG_MOE_FORWARD = modelmod.MoE.forward


# -- the reference's formulas, with the tensors they create on the input's device
def unfold_dev(x, kernel, stride=1, padding=0):
    n, c, h, w = x.shape
    k = kernel
    xp = x.new_zeros(n, c, h + 2 * padding, w + 2 * padding)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    rows = []
    for ki in range(k):
        for kj in range(k):
            patch = xp[:, :, ki:ki + stride * (ho - 1) + 1:stride, kj:kj + stride * (wo - 1) + 1:stride]
            rows.append(patch.reshape(n, c, ho * wo))
    return torch.stack(rows, dim=2).reshape(n, c * k * k, ho * wo)


def sdpa_ref_dev(q, k, v, bias=None, scale=None, causal=False):
    b, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if hkv != h:
        k = k.repeat_interleave(h // hkv, dim=1)
        v = v.repeat_interleave(h // hkv, dim=1)
    acc = ops.acc_dtype(q)
    s = torch.matmul(q.to(acc), k.to(acc).transpose(-1, -2)) * scale
    if bias is not None:
        s = s + bias.to(acc)
    if causal:
        i = torch.arange(nq, device=q.device)[:, None]
        j = torch.arange(nk, device=q.device)[None, :]
        s = s.masked_fill(j > i + (nk - nq), float("-inf"))
    return torch.matmul(ops.softmax(s), v.to(acc))


_AA = {}


def resize_bicubic_aa_dev(x, out_h, out_w):
    n, c, h, w = x.shape
    acc = ops.acc_dtype(x)
    key = (h, w, out_h, out_w, acc, str(x.device))
    if key not in _AA:  # the weight matrices, built on the CPU once
        _AA[key] = (ops.aa_weights(w, out_w).to(acc).to(x.device), ops.aa_weights(h, out_h).to(acc).to(x.device))
    mw, mh = _AA[key]
    return torch.matmul(mh, torch.matmul(x.to(acc), mw.t()))


def resize_linear_dev(x, out_len):
    n, c, L = x.shape
    acc = ops.acc_dtype(x)
    idx = torch.arange(out_len, dtype=acc, device=x.device)
    src = ((idx + 0.5) * (L / out_len) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=L - 1)
    i1 = (i0 + 1).clamp(max=L - 1)
    lam = src - i0.to(acc)
    return x[..., i0] * (1.0 - lam) + x[..., i1] * lam


def rope_cos_sin_dev(positions, dim, theta, dtype=torch.float32):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64, device=positions.device)
                                .to(torch.float32) / dim))
    freqs = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1).to(dtype)
    return emb.cos(), emb.sin()


def moe_ref_dev(x, weights, top_k, norm_topk_prob=False, routed_scaling_factor=1.0):
    ids, w = ops.moe_route(x, weights["gate.weight"], top_k, norm_topk_prob, routed_scaling_factor)
    acc = ops.acc_dtype(x)
    y = torch.zeros(x.shape[0], x.shape[1], dtype=acc, device=x.device)
    for e in torch.unique(ids).tolist():
        tok, slot = torch.nonzero(ids == e, as_tuple=True)
        p = f"experts.{e}."
        out = ops.swiglu(x[tok], weights[p + "gate_proj.weight"], weights[p + "up_proj.weight"],
                         weights[p + "down_proj.weight"])
        y.index_add_(0, tok, out.to(acc) * w[tok, slot][:, None])
    y = y.to(x.dtype)
    if "shared_experts.gate_proj.weight" in weights:
        y = y + ops.swiglu(x, weights["shared_experts.gate_proj.weight"], weights["shared_experts.up_proj.weight"],
                           weights["shared_experts.down_proj.weight"])
    return y, ids, w


def window_partition_dev(x, ws):
    b, h, w, c = x.shape
    ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, w + pw
    x = x.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c), (hp, wp)


# -- the official code's choices
def eager_attention(q, k, v, causal):
    """transformers (4.46) LlamaAttention, eager: q kᵀ/√d in the model dtype, causal mask,
    softmax in fp32 cast back, p v."""
    nq, nk = q.shape[2], k.shape[2]
    if k.shape[1] != q.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal and nq > 1:
        mask = torch.ones(nq, nk, dtype=torch.bool, device=q.device).triu(nk - nq + 1)
        s = s.masked_fill(mask, float("-inf"))
    p = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(p, v)


def sdpa_torch(q, k, v, bias=None, causal=False):
    """F.scaled_dot_product_attention (default scale 1/√d); the eager formula where torch lacks it."""
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, is_causal=causal and bias is None)
    note(f"torch {torch.__version__} has no F.scaled_dot_product_attention: attention runs the eager "
         "formula (matmul, fp32 softmax, matmul) instead")
    s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if bias is not None:
        s = s + bias
    if causal:
        nq, nk = q.shape[2], k.shape[2]
        s = s.masked_fill(torch.ones(nq, nk, dtype=torch.bool, device=q.device).triu(nk - nq + 1), float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype), v)


def sdpa_official(q, k, v, bias=None, scale=None, causal=False):
    assert scale is None or abs(scale - 1.0 / math.sqrt(q.shape[-1])) < 1e-12, "non-default attention scale"
    if causal:  # the LM: eager LlamaAttention
        assert bias is None
        return eager_attention(q, k, v, True)
    return sdpa_torch(q, k, v, bias.to(q.dtype) if bias is not None else None)  # SAM (rel-pos bias), CLIP


def resize_bicubic_aa_official(x, out_h, out_w):
    return F.interpolate(x, size=(out_h, out_w), mode="bicubic", antialias=True, align_corners=False)


def resize_linear_official(x, out_len):
    return F.interpolate(x, size=out_len, mode="linear", align_corners=False)


_INV_FREQ = {}


def rope_official(x, positions, theta):
    """transformers LlamaRotaryEmbedding (inv_freq a buffer, angles in fp32, cos/sin cast to x's
    dtype) + apply_rotary_pos_emb, computed per layer as the deprecated per-attention path does."""
    d = x.shape[-1]
    key = (d, theta, str(x.device))
    if key not in _INV_FREQ:
        _INV_FREQ[key] = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64, device=x.device)
                                          .to(torch.float32) / d))
    freqs = positions.to(torch.float32)[:, None] * _INV_FREQ[key][None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    return x * cos + ops.rotate_half(x) * sin


def moe_route_official(x, gate_w, top_k, norm_topk_prob, routed_scaling_factor):
    """DeepSeek-V2 MoEGate: fp32 logits, fp32 softmax, topk(sorted=False)."""
    scores = F.linear(x.float(), gate_w.float()).softmax(dim=-1, dtype=torch.float32)
    w, ids = torch.topk(scores, k=top_k, dim=-1, sorted=False)
    if top_k > 1 and norm_topk_prob:
        w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
    else:
        w = w * routed_scaling_factor
    return ids, w


def moe_official(x, weights, top_k, norm_topk_prob=False, routed_scaling_factor=1.0):
    """DeepseekV2MoE.moe_infer: tokens sorted by expert, one host sync for the counts, one
    SwiGLU per expert with tokens, weighted sum in the routing weights' dtype, + shared."""
    ids, w = moe_route_official(x, weights["gate.weight"], top_k, norm_topk_prob, routed_scaling_factor)
    n_exp = weights["gate.weight"].shape[0]
    cnts = ids.new_zeros((ids.shape[0], n_exp))
    cnts.scatter_(1, ids, 1)
    per_expert = cnts.sum(dim=0).tolist()
    idxs = ids.view(-1).argsort()
    sorted_tokens = x[idxs // ids.shape[1]]
    outs, start = [], 0
    for e, n in enumerate(per_expert):
        if n == 0:
            continue
        p = f"experts.{e}."
        outs.append(ops.swiglu(sorted_tokens[start:start + n], weights[p + "gate_proj.weight"],
                               weights[p + "up_proj.weight"], weights[p + "down_proj.weight"]))
        start += n
    outs = torch.cat(outs, dim=0)
    new_x = torch.empty_like(outs)
    new_x[idxs] = outs
    y = new_x.view(*ids.shape, -1).type(w.dtype).mul_(w.unsqueeze(-1)).sum(dim=1).type(new_x.dtype)
    if "shared_experts.gate_proj.weight" in weights:
        y = y + ops.swiglu(x, weights["shared_experts.gate_proj.weight"], weights["shared_experts.up_proj.weight"],
                           weights["shared_experts.down_proj.weight"])
    return y, ids, w


def moe_forward_cached(self, x, taps=None, prefix=""):
    """MoE.forward with its parameter dict built once (the reference rebuilds it per call, a
    Python cost the official module does not have)."""
    w = self.__dict__.get("_bench_params")
    if w is None:
        w = self.__dict__["_bench_params"] = dict(self.named_parameters())
    shape = x.shape
    y, ids, tw = ops.moe(x.reshape(-1, shape[-1]), w, self.c.num_experts_per_tok, self.c.norm_topk_prob,
                         self.c.routed_scaling_factor)
    if taps is not None:
        taps[prefix + "topk_ids"] = ids
        taps[prefix + "topk_weights"] = tw
    return y.reshape(shape)


def install_ops(mode):
    """mode: 'pristine' (the reference as it is: CPU only), 'reference' (its formulas, device-aware)
    or 'official' (the official code's torch calls)."""
    for n, f in ORIG_OPS.items():
        setattr(ops, n, f)
    modelmod.window_partition = ORIG_WINDOW_PARTITION
    modelmod.MoE.forward = ORIG_MOE_FORWARD
    if mode == "pristine":
        return
    ops.unfold = unfold_dev
    ops.sdpa = sdpa_ref_dev
    ops.resize_bicubic_aa = resize_bicubic_aa_dev
    ops.resize_linear = resize_linear_dev
    ops.rope_cos_sin = rope_cos_sin_dev
    ops.moe = moe_ref_dev
    modelmod.window_partition = window_partition_dev
    if mode == "reference":
        return
    assert mode == "official", mode
    ops.linear = lambda x, weight, bias=None: F.linear(x, weight, bias)
    ops.conv2d = lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias, stride, padding)
    ops.layer_norm = lambda x, weight, bias, eps: F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    ops.gelu = F.gelu
    ops.silu = F.silu
    ops.softmax = lambda x: torch.softmax(x, dim=-1)
    ops.sdpa = sdpa_official
    ops.resize_bicubic_aa = resize_bicubic_aa_official
    ops.resize_linear = resize_linear_official
    ops.rope = rope_official
    ops.moe = moe_official
    modelmod.MoE.forward = moe_forward_cached


def drop_param_caches(m):
    for mod in m.modules():
        mod.__dict__.pop("_bench_params", None)


# ============================================================================ timing
class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def once(self, fn):
        if self.cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    def median(self, fn, runs, warmup):
        """(median ms, [ms...]) of `runs` timed calls after `warmup` untimed ones."""
        for _ in range(warmup):
            fn()
        self.sync()
        ms = [self.once(fn) for _ in range(max(1, runs))]
        return statistics.median(ms), ms


def reset_peak(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(dev):
    return torch.cuda.max_memory_allocated() / 2 ** 20 if dev.type == "cuda" else None


def current_mib(dev):
    return torch.cuda.memory_allocated() / 2 ** 20 if dev.type == "cuda" else None


# ============================================================================ peaks
def measure_peaks(dev, tm, a):
    small = a.tiny
    p = {}
    nbytes = (64 << 20) if small else (1 << 30)
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=dev).uniform_()
    dst = torch.empty_like(src)
    ms, _ = tm.median(lambda: dst.copy_(src), a.kernel_runs, 2)
    p.update(copy_bytes=nbytes, copy_gbs=2.0 * nbytes / (ms * 1e-3) / 1e9)
    del src, dst

    def gemm(n, dt, precision="highest"):
        x = torch.randn(n, n, device=dev, dtype=dt)
        y = torch.randn(n, n, device=dev, dtype=dt)
        torch.set_float32_matmul_precision(precision)
        try:
            ms, _ = tm.median(lambda: torch.matmul(x, y), a.kernel_runs, 2)
        finally:
            torch.set_float32_matmul_precision("highest")
        return 2.0 * n ** 3 / (ms * 1e-3) / 1e9

    n = 1024 if small else 8192
    p["gemm_n"] = n
    p["sgemm_gflops"] = gemm(n, torch.float32)  # IEEE fp32, no TF32
    p["sgemm_4096_gflops"] = gemm(1024 if small else 4096, torch.float32)  # dsocr's SGEMM shape
    if dev.type == "cuda":
        p["tf32_gemm_gflops"] = gemm(n, torch.float32, "high")
    p["bf16_gemm_gflops"] = gemm(n, torch.bfloat16)
    return p


# ============================================================================ kernels
def kernel_cases(dev, dt, small):
    """(name, bound, gflop, gbytes, fn, extras{name: fn}) at the shapes and names of
    bench/kernels.cpp (its --small shapes for --tiny). gflop counts as dsocr does; gbytes are the
    bytes this torch call moves at its dtype (the SAM cases read a full [B,H,T,T] bias)."""
    s = small
    es = torch.tensor([], dtype=dt).element_size()
    g = torch.Generator(device=dev).manual_seed(7)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, device=dev, dtype=torch.float32).mul_(scale).to(dt)

    gb = lambda elements: elements * es / 1e9  # noqa: E731
    out = []

    def sam_attn(stem, nb, h, k, d):
        t = k * k
        name = f"{stem}_{nb}x{h}x{t}x{d}"
        q, kk, v = r(nb, h, t, d), r(nb, h, t, d), r(nb, h, t, d)
        rh, rw = r(nb, h, t, k), r(nb, h, t, k)
        bias = (rh[..., :, None] + rw[..., None, :]).reshape(nb, h, t, t)
        build = lambda: sdpa_torch(q, kk, v, (rh[..., :, None] + rw[..., None, :]).reshape(nb, h, t, t))  # noqa
        out.append((name, "compute", 4.0 * nb * h * t * t * d / 1e9, gb(4.0 * nb * h * t * d + nb * h * t * t),
                    lambda: sdpa_torch(q, kk, v, bias), {"ms_with_bias_build": build}))

    sam_attn("sdpa_sam_window_relpos", 2 if s else 25, 2 if s else 12, 14, 64)
    sam_attn("sdpa_sam_global_relpos", 1, 1 if s else 12, 32 if s else 64, 64)

    h, k, d = (1 if s else 12), (32 if s else 64), 64
    t = k * k
    q = r(h, k, k, d)
    th, tw = r(2 * k - 1, d), r(2 * k - 1, d)
    ii = torch.arange(k, device=dev)
    rel = ii[:, None] - ii[None, :] + k - 1

    def rel_terms():  # official add_decomposed_rel_pos: table gather + two einsums
        rel_h = torch.einsum("bhwc,hkc->bhwk", q, th[rel])
        rel_w = torch.einsum("bhwc,wkc->bhwk", q, tw[rel])
        return rel_h, rel_w

    out.append((f"rel_pos_terms_sam_global_{h}x{t}x{k}x{d}", "compute", 4.0 * h * t * k * d / 1e9, gb(h * t * d + 2.0 * h * t * k),
                rel_terms, {}))

    def attn(stem, h, nq, nk, d, causal):
        shape = f"{h}x{nq}x{d}" if nq == nk else f"{h}x{nq}x{nk}x{d}"
        name = f"{stem}_{shape}" + ("_causal" if causal and nq > 1 else "")
        q, kk, v = r(1, h, nq, d), r(1, h, nk, d), r(1, h, nk, d)
        pairs = 0.5 * nq * (nk + 1) if causal and nq == nk else float(nq) * nk
        extras = {"eager_ms": lambda: eager_attention(q, kk, v, causal)} if d == 128 else {}
        out.append((name, "memory" if nq == 1 else "compute", 4.0 * h * pairs * d / 1e9,
                    gb(2.0 * h * nq * d + 2.0 * h * nk * d), lambda: sdpa_torch(q, kk, v, None, causal and nq > 1),
                    extras))

    attn("sdpa_clip", 2 if s else 16, 257, 257, 64, False)
    attn("sdpa_lm_prefill", 2 if s else 10, 256 if s else 1024, 256 if s else 1024, 128, True)
    attn("sdpa_lm_decode", 10, 1, 256 if s else 1024, 128, True)

    def lin(stem, m, kdim, n):
        name = f"{stem}_{m}x{kdim}x{n}"
        x, w = r(m, kdim), r(n, kdim, scale=0.05)
        out.append((name, "memory" if m <= 4 else "compute", 2.0 * m * n * kdim / 1e9,
                    gb(float(m) * kdim + float(n) * kdim + float(m) * n), lambda: torch.matmul(x, w.t()), {}))

    lin("gemm_sam_qkv", 1024 if s else 4096, 768, 2304)
    lin("gemm_sam_mlp", 1024 if s else 4096, 768, 3072)
    lin("gemm_clip_mlp", 257, 1024, 1024 if s else 4096)
    lin("gemm_lm_qkv_prefill", 256 if s else 1024, 1280, 3840)
    lin("gemv_lm_qkv_decode", 1, 1280, 3840)
    lin("gemv_lm_head", 1, 1280, 16384 if s else 129280)

    def moe(stem, t, hd, e, i, topk):
        name = f"{stem}_{t}x{hd}_{e}x{i}_top{topk}"
        w = {"gate.weight": r(e, hd, scale=hd ** -0.5)}
        for j in range(e):
            w[f"experts.{j}.gate_proj.weight"] = r(i, hd, scale=hd ** -0.5)
            w[f"experts.{j}.up_proj.weight"] = r(i, hd, scale=hd ** -0.5)
            w[f"experts.{j}.down_proj.weight"] = r(hd, i, scale=i ** -0.5)
        x = r(t, hd)
        mem = t <= 4
        weights = float(t) * topk * 3 * i * hd if mem else float(e) * 3 * i * hd
        # routed experts only, as dsocr's case (no shared experts); the router matmul is included
        out.append((name, "memory" if mem else "compute", 6.0 * t * topk * hd * i / 1e9, gb(weights + 2.0 * t * hd),
                    lambda: ops.moe(x, w, topk), {}))

    moe("moe_prefill", 64 if s else 1024, 1280, 64, 128 if s else 896, 6)
    moe("moe_decode", 1, 1280, 64, 896, 6)

    c, gg = (64 if s else 256), (16 if s else 64)
    xc, wc = r(1, c, gg, gg), r(c, c, 3, 3, scale=0.02)
    out.append((f"conv2d_neck_3x3_{c}x{gg}x{gg}", "compute", 2.0 * c * c * 9 * gg * gg / 1e9, gb(2.0 * c * gg * gg + 9.0 * c * c),
                lambda: F.conv2d(xc, wc, None, 1, 1), {}))
    c = 64 if s else 768
    xr = r(1, c, 64, 64)  # in fp32 whatever the model dtype, as the official code resizes (there is
    # no bf16 antialiased bicubic in torch's CPU kernels either)
    out.append((f"resize_bicubic_aa_sam_pos_{c}x64to40", "memory", 0.0, gb(c * (64.0 * 64 + 40 * 40)),
                lambda: F.interpolate(xr.float(), size=(40, 40), mode="bicubic", antialias=True,
                                      align_corners=False).to(dt), {}))
    c = 128 if s else 1024
    xu = r(1, c, 32, 32)
    out.append((f"unfold_k2s2_{c}x32x32", "memory", 0.0, gb(2.0 * c * 32 * 32), lambda: F.unfold(xu, 2, stride=2), {}))
    t = 1024 if s else 4096
    xl, wl, bl = r(t, 768), r(768), r(768)
    out.append((f"layer_norm_sam_{t}x768", "memory", 0.0, gb(2.0 * t * 768),
                lambda: F.layer_norm(xl, (768,), wl, bl, 1e-6), {}))
    xn, wn = r(1024, 1280), r(1280)
    out.append(("rms_norm_lm_1024x1280", "memory", 0.0, gb(2.0 * 1024 * 1280),
                lambda: ORIG_OPS_RMS(xn, wn, 1e-6), {}))
    v = 16384 if s else 129280
    xa = r(1, v)
    out.append((f"argmax_vocab_{v}", "memory", 0.0, gb(v), lambda: torch.argmax(xa, dim=-1), {}))
    return out


ORIG_OPS_RMS = ops.rms_norm  # the reference's (= transformers') RMSNorm


def bench_kernels(dev, dt, tm, a):
    rows = []
    for name, bound, gflop, gbytes, fn, extras in kernel_cases(dev, dt, a.tiny):
        row = {"name": name, "bound": bound, "gflop": gflop, "gbytes": gbytes}
        try:
            with torch.inference_mode():
                ms, _ = tm.median(fn, a.kernel_runs, 2)
                row["ms"] = ms
                row["gflops"] = gflop / (ms * 1e-3) if gflop else 0.0
                row["gbs"] = gbytes / (ms * 1e-3)
                for k, f in extras.items():
                    row[k] = tm.median(f, a.kernel_runs, 2)[0]
        except Exception as e:  # e.g. an op without a kernel for this dtype on this device
            row["ms"] = None
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        rows.append(row)
        log(f"  {dt_name(dt)} {name:<38} " + (f"{row['ms']:10.4f} ms" if row.get("ms") is not None
                                              else row["error"]))
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return rows


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

        decode_run(min(8, N))  # warm-up
        ms = [decode_run(N) for _ in range(a.decode_runs)]
        r["decode_tokens"] = N
        r["decode_runs_ms"] = ms
        r["decode_ms_per_tok"] = statistics.median(ms) / N
        r["decode_tok_s"] = 1e3 / r["decode_ms_per_tok"]
        log(f"  {dt_name(dt)} decode {N} tokens      {r['decode_tok_s']:10.1f} tok/s")
        r["decode_peak_mem_mib"] = peak_mib(dev)
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


# ============================================================================ check
def check(dev):
    """Tiny model: official ops == reference ops (== the reference as it is, on the CPU)."""
    c = tiny_config()
    full = full_config()
    for p in (os.path.join(ROOT, "tests", "data", "official", "deepseek-ocr", "config.json"),):
        if os.path.exists(p):
            ok = cfgmod.load(p).to_dict() == full.to_dict()
            print(f"full config == {p}: {ok}")
            if not ok:
                return 1
            break
    m, _ = build_model(c, dev)
    g = torch.Generator(device=dev).manual_seed(3)
    glob = torch.rand(1, 3, 1024, 1024, generator=g, device=dev) * 2 - 1
    tiles = torch.rand(6, 3, 640, 640, generator=g, device=dev) * 2 - 1
    ids = torch.randint(2, c.vocab_size, (40,), generator=g, device=dev)
    pos = torch.arange(48, device=dev)

    def run():
        with torch.inference_mode():
            v = m.vision_embeddings(glob, tiles, (2, 3))
            full_logits = m.decode(m.model.embed_tokens.weight[ids], pos[:40])
            caches = [{} for _ in m.model.layers]
            lg = [prefill(m, ids[:32], pos[:32], caches)]
            for i in range(8):
                lg.append(m.decode(m.model.embed_tokens.weight[ids[32 + i:33 + i]], pos[32 + i:33 + i],
                                   kv_caches=caches))
            return {"vision": v.float(), "logits": full_logits, "cached": torch.cat(lg)}

    modes = (["pristine"] if dev.type == "cpu" else []) + ["reference", "official"]
    res = {}
    for mode in modes:
        install_ops(mode)
        drop_param_caches(m)
        res[mode] = run()
    install_ops("pristine")
    base = modes[0]
    bad = 0
    for mode in modes[1:]:
        for k, v in res[mode].items():
            ref = res[base][k]
            err = float((v - ref).abs().max() / ref.abs().max())
            ok = err < 1e-4
            bad += not ok
            print(f"{mode:>9} vs {base}: {k:<7} max |diff| / max |ref| = {err:.2e} {'ok' if ok else 'MISMATCH'}")
    # KV-cache decode == the same rows of the one-shot forward
    for mode in modes:
        err = float((res[mode]["cached"] - res[mode]["logits"][31:]).abs().max() / res[mode]["logits"].abs().max())
        bad += err >= 1e-4
        print(f"{mode:>9}: KV-cache decode vs full forward: {err:.2e} {'ok' if err < 1e-4 else 'MISMATCH'}")
    # kernels: every case runs (tiny shapes)
    install_ops("official")
    for dt in (torch.float32, torch.bfloat16):
        for name, _bound, _gflop, _gbytes, fn, extras in kernel_cases(dev, dt, True):
            try:
                with torch.inference_mode():
                    fn()
                    for f in extras.values():
                        f()
            except Exception as e:
                print(f"kernel {name} {dt_name(dt)}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    install_ops("pristine")
    print("check:", "ok" if not bad else f"{bad} mismatches")
    return 1 if bad else 0


# ============================================================================ main
def log(s):
    print(s, flush=True)


def dt_name(dt):
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dt]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def set_fp32_ieee():
    """fp32 means IEEE fp32: no TF32 in matmuls or convolutions. Returns what torch reports."""
    torch.set_float32_matmul_precision("highest")
    try:
        torch.backends.cudnn.allow_tf32 = False
    except Exception as e:  # a torch that refuses the legacy switch
        note(f"cudnn.allow_tf32: {e}")
    out = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    try:
        out["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        out["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    except Exception as e:
        note(f"reading the TF32 switches: {e}")
    return out


def git_sha():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except Exception:
        return None


def main(argv=None):
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
    a = ap.parse_args(argv)
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
    res = {
        "tool": "bench/torch_bench.py",
        "device": name,
        "device_type": dev.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": git_sha(),
        "config": "tiny" if a.tiny else "full",
        "shapes": "small" if a.tiny else "real",
        "ops": a.ops,
        "sdpa": ("F.scaled_dot_product_attention" if HAS_SDPA else
                 f"eager fallback (torch {torch.__version__} has no F.scaled_dot_product_attention)"),
        "fp32": fp32_mode,
        "runs": a.runs, "decode_runs": a.decode_runs, "warmup": a.warmup, "kernel_runs": a.kernel_runs,
        "dtypes": [dt_name(d) for d in dtypes],
    }
    if dev.type == "cpu":
        res["threads"] = torch.get_num_threads()
    log(f"torch_bench on {name} ({dev.type}), torch {torch.__version__}, ops {a.ops}, "
        f"{'tiny' if a.tiny else 'full'} model, runs {a.runs}")

    with torch.inference_mode():
        res["peak"] = measure_peaks(dev, tm, a)
    pk = res["peak"]
    log(f"peak: copy {pk['copy_gbs']:.1f} GB/s, SGEMM {pk['sgemm_gflops']:.0f} GFLOP/s ({pk['gemm_n']}^3, no TF32), "
        f"bf16 GEMM {pk['bf16_gemm_gflops']:.0f} GFLOP/s")

    if not a.skip_kernels:
        res["kernels"] = {dt_name(dt): bench_kernels(dev, dt, tm, a) for dt in dtypes}
        for rows in res["kernels"].values():
            for row in rows:
                if row.get("ms"):
                    peak_v = pk["copy_gbs"] if row["bound"] == "memory" else pk["sgemm_gflops"]
                    row["pct_peak"] = 100.0 * (row["gbs"] if row["bound"] == "memory" else row["gflops"]) / peak_v

    if not a.skip_model:
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
            add_model_pcts(r, pk, dt)
            res["model"][dt_name(dt)] = r
        del m
    res["notes"] = NOTES
    res["wall_s"] = time.perf_counter() - t_start
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    log(f"wrote {a.out} ({res['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/torch_bench.py's peaks (device copy, 8192³ GEMMs) and kernel cases: the shapes and names
of `dsocr bench kernels` (bench/kernels.cpp), run with torch ops."""
import torch
import torch.nn.functional as F

from torch_bench_common import dt_name, log, ops
from torch_bench_ops import eager_attention, sdpa_torch

ORIG_OPS_RMS = ops.rms_norm  # the reference's (= transformers') RMSNorm


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
    es = torch.tensor([], dtype=dt).element_size()
    g = torch.Generator(device=dev).manual_seed(7)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, device=dev, dtype=torch.float32).mul_(scale).to(dt)

    gb = lambda elements: elements * es / 1e9  # noqa: E731
    out = []
    # in this order: the cases draw their inputs from one generator
    _attention_cases(out, r, gb, dev, small)
    _gemm_moe_cases(out, r, gb, small)
    _misc_cases(out, r, gb, dt, small)
    return out


def _attention_cases(out, r, gb, dev, s):
    """SAM attention with the rel-pos bias, its rel-pos terms, CLIP and LM attention."""
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


def _gemm_moe_cases(out, r, gb, s):
    """The GEMM / GEMV shapes and the routed-expert MoE."""
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


def _misc_cases(out, r, gb, dt, s):
    """Convolution, resize, unfold, norms, argmax."""
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

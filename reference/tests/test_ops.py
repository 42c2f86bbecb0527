"""ops.py against torch's own implementations and independent formulations."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import crosscheck
from dsocr_ref import ops

D = torch.float64


@pytest.mark.parametrize("shape,out", [
    ((1, 3, 64, 64), (40, 40)), ((1, 3, 64, 64), (32, 32)), ((1, 3, 64, 64), (48, 48)), ((1, 3, 64, 64), (80, 80)),
    ((1, 5, 16, 16), (10, 10)), ((1, 5, 16, 16), (8, 8)), ((1, 5, 16, 16), (20, 20)),
    ((2, 2, 7, 17), (61, 127)), ((1, 3, 127, 61), (17, 7)), ((1, 3, 17, 61), (61, 17)), ((1, 2, 17, 17), (17, 17)),
])
def test_resize_bicubic_aa_matches_torch(shape, out):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=D)
    ref = F.interpolate(x, size=out, mode="bicubic", antialias=True, align_corners=False)
    got = ops.resize_bicubic_aa(x, *out)
    crosscheck("resize_bicubic_aa fp64", "F.interpolate(bicubic, antialias) fp64", got, ref, 1e-12)
    # fp32 path too
    got32 = ops.resize_bicubic_aa(x.float(), *out)
    ref32 = F.interpolate(x.float(), size=out, mode="bicubic", antialias=True, align_corners=False)
    crosscheck("resize_bicubic_aa fp32", "F.interpolate(bicubic, antialias) fp32", got32, ref32, 1e-5)


@pytest.mark.parametrize("L,out", [(127, 79), (127, 63), (127, 95), (127, 159), (27, 27), (7, 17), (61, 7)])
def test_resize_linear_matches_torch(L, out):
    x = torch.randn(2, 5, L, generator=torch.Generator().manual_seed(1), dtype=D)
    ref = F.interpolate(x, size=out, mode="linear", align_corners=False)
    crosscheck("resize_linear fp64", "F.interpolate(linear)", ops.resize_linear(x, out), ref, 1e-12)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (5, 3, 2), (16, 16, 0)])
def test_unfold_and_conv_match_torch(k, s, p):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 17, 61 if k < 16 else 64, generator=g, dtype=D)
    crosscheck("unfold fp64 (bit-exact)", "F.unfold", ops.unfold(x, k, s, p), F.unfold(x, k, stride=s, padding=p), 0)
    w = torch.randn(7, 3, k, k, generator=g, dtype=D)
    b = torch.randn(7, generator=g, dtype=D)
    crosscheck("conv2d fp64 (unfold + matmul)", "F.conv2d", ops.conv2d(x, w, b, s, p), F.conv2d(x, w, b, s, p), 1e-12)


def test_norms_and_activations_match_torch():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 17, 127, generator=g, dtype=D) * 2 + 0.3
    w = torch.randn(127, generator=g, dtype=D)
    b = torch.randn(127, generator=g, dtype=D)
    crosscheck("layer_norm fp64", "F.layer_norm", ops.layer_norm(x, w, b, 1e-6), F.layer_norm(x, (127,), w, b, 1e-6),
               1e-12)
    x4 = torch.randn(2, 7, 5, 9, generator=g, dtype=D)
    ln2d = F.layer_norm(x4.permute(0, 2, 3, 1), (7,), w[:7], b[:7], 1e-6).permute(0, 3, 1, 2)
    crosscheck("layer_norm_2d fp64", "F.layer_norm over C (NHWC)", ops.layer_norm_2d(x4, w[:7], b[:7], 1e-6), ln2d,
               1e-12)
    rms = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
    crosscheck("rms_norm fp64", "x*rsqrt(mean(x^2)+eps)*w", ops.rms_norm(x, w, 1e-6), rms, 1e-12)
    crosscheck("gelu (erf) fp64", "F.gelu", ops.gelu(x), F.gelu(x), 1e-12)
    crosscheck("silu fp64", "F.silu", ops.silu(x), F.silu(x), 1e-12)
    crosscheck("quick_gelu fp64", "x*torch.sigmoid(1.702x)", ops.quick_gelu(x), x * torch.sigmoid(1.702 * x), 1e-12)
    crosscheck("softmax fp64", "torch.softmax", ops.softmax(x * 30), torch.softmax(x * 30, -1), 1e-12)


def sdpa_loop(q, k, v, bias, scale, causal):
    """Independent formulation: per (batch, head) loops, kv head chosen by h*Hkv//H, log-sum-exp."""
    b, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    out = torch.empty(b, h, nq, d, dtype=D)
    full_bias = None if bias is None else bias.expand(b, h, nq, nk)
    for bi in range(b):
        for hi in range(h):
            kh = hi * hkv // h
            for i in range(nq):
                s = (k[bi, kh].double() @ q[bi, hi, i].double()) * scale
                if full_bias is not None:
                    s = s + full_bias[bi, hi, i].double()
                if causal:
                    s[i + nk - nq + 1:] = -math.inf
                lse = torch.logsumexp(s, 0)
                out[bi, hi, i] = torch.exp(s - lse) @ v[bi, kh].double()
    return out


def torch_sdpa(q, k, v, bias, scale, causal):
    """torch's own attention: F.scaled_dot_product_attention (torch >= 2), else the private
    F._scaled_dot_product_attention of torch 1.13 (math path; no scale argument, so q is
    pre-scaled). KV heads repeated for GQA; causal end-aligned through an additive mask, except
    where Nq == Nk without bias, which uses torch's own is_causal."""
    b, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    k, v = k.repeat_interleave(h // hkv, 1), v.repeat_interleave(h // hkv, 1)
    mask = None if bias is None else bias.expand(b, h, nq, nk)
    is_causal = bool(causal and nq == nk and bias is None)
    if causal and not is_causal:
        i, j = torch.arange(nq)[:, None], torch.arange(nk)[None, :]
        cm = torch.zeros(nq, nk, dtype=q.dtype).masked_fill(j > i + nk - nq, -math.inf).expand(b, h, nq, nk)
        mask = cm if mask is None else mask + cm
    q = q * (scale * math.sqrt(d))  # both torch paths scale by 1/sqrt(d)
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal), \
            "F.scaled_dot_product_attention"
    return F._scaled_dot_product_attention(q, k, v, mask, 0.0, False, is_causal)[0], \
        "F._scaled_dot_product_attention (torch 1.13)"


@pytest.mark.parametrize("b,h,hkv,nq,nk,d,causal,bias", [
    (1, 2, 2, 7, 17, 17, False, None), (2, 6, 2, 9, 9, 16, True, None), (1, 4, 2, 7, 31, 8, True, (1, 4, 7, 31)),
    (2, 3, 3, 5, 5, 4, False, (1, 1, 5, 5)), (1, 2, 1, 3, 11, 8, False, (1, 2, 1, 11)), (1, 10, 10, 1, 17, 128, True, None),
])
def test_sdpa_matches_independent_loop(b, h, hkv, nq, nk, d, causal, bias):
    g = torch.Generator().manual_seed(4)
    q = torch.randn(b, h, nq, d, generator=g, dtype=D)
    k = torch.randn(b, hkv, nk, d, generator=g, dtype=D)
    v = torch.randn(b, hkv, nk, d, generator=g, dtype=D)
    bt = torch.randn(*bias, generator=g, dtype=D) if bias else None
    scale = 0.37
    got = ops.sdpa(q, k, v, bt, scale, causal)
    crosscheck("sdpa fp64", "per-(b,h,i) log-sum-exp loop", got, sdpa_loop(q, k, v, bt, scale, causal), 1e-12)
    ref, name = torch_sdpa(q, k, v, bt, scale, causal)
    crosscheck("sdpa fp64", name, got, ref, 1e-12)
    # fp32 inputs: fp32 result close to the float64 one
    got32 = ops.sdpa(q.float(), k.float(), v.float(), bt.float() if bt is not None else None, scale, causal)
    assert got32.dtype == torch.float32
    crosscheck("sdpa fp32", "ops.sdpa fp64", got32, got.float(), 1e-5)


def test_rope_matches_complex_rotation():
    """NeoX half rotation = complex multiplication of (x_k + i x_{k+D/2}) by exp(i pos θ^(-2k/D))."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 17, 16, generator=g, dtype=D)
    pos = torch.randint(0, 8192, (17,), generator=g)
    theta = 10000.0
    inv = (1.0 / (theta ** (torch.arange(0, 16, 2, dtype=torch.int64).float() / 16)))  # fp32 as HF
    ang = (pos.float()[:, None] * inv[None]).double()
    z = torch.complex(x[..., :8], x[..., 8:]) * torch.exp(1j * ang)
    ref = torch.cat([z.real, z.imag], dim=-1)
    crosscheck("rope fp64", "complex rotation x*exp(i*pos*theta^(-2k/D))", ops.rope(x, pos, theta), ref, 1e-12)


def test_moe_matches_dense_formulation():
    g = torch.Generator().manual_seed(6)
    t, hid, ne, inter, k = 11, 17, 8, 5, 3
    x = torch.randn(t, hid, generator=g, dtype=D)
    w = {"gate.weight": torch.randn(ne, hid, generator=g, dtype=D)}
    for e in range(ne):
        for n, sh in (("gate_proj", (inter, hid)), ("up_proj", (inter, hid)), ("down_proj", (hid, inter))):
            w[f"experts.{e}.{n}.weight"] = torch.randn(*sh, generator=g, dtype=D) * 0.3
    for n, sh in (("gate_proj", (10, hid)), ("up_proj", (10, hid)), ("down_proj", (hid, 10))):
        w[f"shared_experts.{n}.weight"] = torch.randn(*sh, generator=g, dtype=D) * 0.3
    y, ids, tw = ops.moe(x, w, k)
    # dense: every expert on every token, combined with a [T, E] weight matrix that is zero off the top-k
    p = torch.softmax(x @ w["gate.weight"].t(), -1)
    topv, topi = torch.topk(p, k, -1)
    comb = torch.zeros_like(p).scatter(1, topi, topv)
    silu = lambda a: a * torch.sigmoid(a)
    ref = torch.zeros(t, hid, dtype=D)
    for e in range(ne):
        pe = f"experts.{e}."
        oe = (silu(x @ w[pe + "gate_proj.weight"].t()) * (x @ w[pe + "up_proj.weight"].t())) @ w[pe + "down_proj.weight"].t()
        ref += comb[:, e:e + 1] * oe
    ref += (silu(x @ w["shared_experts.gate_proj.weight"].t()) * (x @ w["shared_experts.up_proj.weight"].t())) \
        @ w["shared_experts.down_proj.weight"].t()
    crosscheck("moe fp64", "dense: every expert, [T,E] top-k weight matrix", y, ref, 1e-12)
    crosscheck("moe expert ids (exact, as sets)", "torch.topk of softmax", torch.sort(ids, -1).values,
               torch.sort(topi, -1).values, 0)
    assert torch.all(tw[:, :-1] >= tw[:, 1:])  # stored in descending probability order
    # norm_topk_prob and routed_scaling_factor
    _, _, tw2 = ops.moe(x, w, k, norm_topk_prob=True)
    assert torch.allclose(tw2.sum(-1), torch.ones(t, dtype=D))
    _, _, tw3 = ops.moe(x, w, k, routed_scaling_factor=2.5)
    assert torch.allclose(tw3, tw * 2.5)


def test_sam_rel_bias_matches_official_formulation():
    """get_rel_pos + add_decomposed_rel_pos as the SAM code writes them (relative_coords, einsum)."""
    g = torch.Generator().manual_seed(7)
    for k, L in ((14, 27), (8, 127), (5, 9)):
        c = 6
        th = torch.randn(L, c, generator=g, dtype=D)
        tw = torch.randn(L, c, generator=g, dtype=D)
        q = torch.randn(2, k * k, c, generator=g, dtype=D)

        def get_rel_pos(size, rel):
            m = 2 * size - 1
            if rel.shape[0] != m:
                rel = F.interpolate(rel.reshape(1, rel.shape[0], -1).permute(0, 2, 1), size=m, mode="linear")
                rel = rel.reshape(-1, m).permute(1, 0)
            coords = torch.arange(size)[:, None] - torch.arange(size)[None, :] + (size - 1)
            return rel[coords.long()]

        rh, rw = get_rel_pos(k, th), get_rel_pos(k, tw)
        rq = q.reshape(2, k, k, c)
        bias = torch.zeros(2, k, k, k, k, dtype=D)
        for qh in range(k):
            for qw in range(k):
                for kh in range(k):
                    for kw in range(k):
                        bias[:, qh, qw, kh, kw] = rq[:, qh, qw] @ rh[qh, kh] + rq[:, qh, qw] @ rw[qw, kw]
        got = ops.sam_rel_bias(q, th, tw, k, k)
        crosscheck("sam_rel_bias fp64", "official get_rel_pos (F.interpolate linear) + loops", got,
                   bias.reshape(2, k * k, k * k), 1e-12)

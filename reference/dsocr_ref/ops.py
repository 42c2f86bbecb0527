"""The golden contract's v1 op vocabulary in plain torch, fp32 (docs/golden-contract.md).

Each function is written from the formula (no torch.nn.functional shortcut where the op itself is
what is being specified: resize, unfold, attention, rope, moe), so that tests/ can cross-check it
against torch's own implementation. Shapes follow PyTorch conventions.
"""
import math

import torch

F32 = torch.float32
F64 = torch.float64


def acc_dtype(x):
    """Accumulation dtype: float64 when given float64 (the goldens compute ops that way), else fp32."""
    return F64 if x.dtype == F64 else F32


def linear(x, weight, bias=None):
    """y = x Wᵀ + b.  x [..., in], weight [out, in], bias [out]."""
    y = torch.matmul(x, weight.t())
    if bias is not None:
        y = y + bias
    return y


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """x [N,C,H,W], weight [O,C,kh,kw] -> [N,O,Ho,Wo], as im2col (our unfold) then a matmul."""
    n, c, h, w = x.shape
    o, c2, kh, kw = weight.shape
    assert c == c2, (x.shape, weight.shape)
    assert kh == kw, "square kernels only"
    cols = unfold(x, kh, stride, padding)  # [N, C*k*k, L]
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    y = torch.matmul(weight.reshape(o, -1), cols)  # [N, O, L]
    if bias is not None:
        y = y + bias[None, :, None]
    return y.reshape(n, o, ho, wo)


def layer_norm(x, weight, bias, eps):
    """Over the last axis, biased variance."""
    u = x.mean(-1, keepdim=True)
    d = x - u
    var = (d * d).mean(-1, keepdim=True)
    return d / torch.sqrt(var + eps) * weight + bias


def layer_norm_2d(x, weight, bias, eps):
    """SAM's LayerNorm2d: x [N,C,H,W], normalised per pixel over C (biased variance)."""
    u = x.mean(1, keepdim=True)
    d = x - u
    var = (d * d).mean(1, keepdim=True)
    y = d / torch.sqrt(var + eps)
    return weight[:, None, None] * y + bias[:, None, None]


def rms_norm(x, weight, eps):
    """DeepSeek-V2/Llama RMSNorm: in fp32 x·rsqrt(mean(x²)+eps), cast to x's dtype, then ·weight."""
    dt = x.dtype
    h = x.to(acc_dtype(x))
    var = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return weight * h.to(dt)


def gelu(x):
    """Exact (erf) GELU."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def silu(x):
    return x * torch.sigmoid(x)


def activation(x, kind):
    return {"gelu": gelu, "quick_gelu": quick_gelu, "silu": silu}[kind](x)


def softmax(x):
    """Over the last axis, max-subtracted."""
    m = x.max(-1, keepdim=True).values
    e = torch.exp(x - m)
    return e / e.sum(-1, keepdim=True)


def sdpa(q, k, v, bias=None, scale=None, causal=False, causal_prefix=0):
    """softmax(q kᵀ·scale + bias [+ causal mask]) v, in fp32.

    q [B,H,Nq,D]; k, v [B,Hkv,Nk,D] with H a multiple of Hkv (query head h uses kv head
    h // (H/Hkv)); bias broadcastable to [B,H,Nq,Nk]; causal: query i sees keys j <= i + Nk - Nq,
    and keys j < causal_prefix (DeepSeek-OCR-2's encoder: image tokens, then learned queries).
    """
    b, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    assert h % hkv == 0, (q.shape, k.shape)
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if hkv != h:
        rep = h // hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    acc = acc_dtype(q)
    s = torch.matmul(q.to(acc), k.to(acc).transpose(-1, -2)) * scale
    if bias is not None:
        s = s + bias.to(acc)
    if causal:
        i = torch.arange(nq)[:, None]
        j = torch.arange(nk)[None, :]
        s = s.masked_fill((j > i + (nk - nq)) & (j >= causal_prefix), float("-inf"))
    p = softmax(s)
    return torch.matmul(p, v.to(acc))


def unfold(x, kernel, stride=1, padding=0):
    """torch F.unfold for a square kernel: x [N,C,H,W] -> [N, C·k·k, L], L = Ho·Wo.

    Row c·k·k + ki·k + kj of the output holds x[c, oh·s - p + ki, ow·s - p + kj] (0 outside).
    """
    n, c, h, w = x.shape
    k = kernel
    xp = torch.zeros(n, c, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    xp[:, :, padding:padding + h, padding:padding + w] = x
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    rows = []
    for ki in range(k):
        for kj in range(k):
            patch = xp[:, :, ki:ki + stride * (ho - 1) + 1:stride, kj:kj + stride * (wo - 1) + 1:stride]
            rows.append(patch.reshape(n, c, ho * wo))
    y = torch.stack(rows, dim=2)  # [N, C, k*k, L]
    return y.reshape(n, c * k * k, ho * wo)


def _cubic_aa(x, a=-0.5):
    """Keys cubic kernel, a = -0.5 (the antialiased path of torch uses -0.5)."""
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _linear_aa(x):
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def aa_weights(n_in, n_out, kind="cubic"):
    """The [n_out, n_in] resampling matrix of torch's antialiased interpolation
    (align_corners=False, no explicit scale): ATen's _compute_indices_min_size_weights_aa.

    scale = in/out; support = (2 for cubic, 1 for linear)·max(scale,1); invscale = 1/max(scale,1);
    center = scale·(i+0.5); xmin = max(int(center-support+0.5),0); xmax = min(int(center+support+0.5), in);
    w(x) = K((x - center + 0.5)·invscale) for x in [xmin, xmax), normalised to sum 1.
    Computed in float64, returned as float32 (torch computes the weights in the input's type,
    so the last bit can differ).
    """
    kern, base = (_cubic_aa, 2.0) if kind == "cubic" else (_linear_aa, 1.0)
    scale = n_in / n_out
    support = base * max(scale, 1.0)
    invscale = 1.0 / max(scale, 1.0)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in)
        ws = [kern((j - center + 0.5) * invscale) for j in range(xmin, xmax)]
        tot = sum(ws)
        for j, wv in zip(range(xmin, xmax), ws):
            m[i, j] = wv / tot if tot != 0.0 else 0.0
    return m


def resize_bicubic_aa(x, out_h, out_w):
    """torch F.interpolate(x, (out_h,out_w), mode="bicubic", antialias=True, align_corners=False),
    x [N,C,H,W], separable: horizontal pass first, then vertical (as ATen does)."""
    n, c, h, w = x.shape
    acc = acc_dtype(x)
    mw = aa_weights(w, out_w).to(acc)
    mh = aa_weights(h, out_h).to(acc)
    y = torch.matmul(x.to(acc), mw.t())  # [N,C,H,out_w]
    y = torch.matmul(mh, y)  # [N,C,out_h,out_w]
    return y


def resize_linear(x, out_len):
    """torch F.interpolate(x, out_len, mode="linear", align_corners=False), x [N,C,L]:
    src = max((i+0.5)·L/out - 0.5, 0); i0 = floor(src); i1 = min(i0+1, L-1); lambda = src - i0."""
    n, c, L = x.shape
    scale = L / out_len
    acc = acc_dtype(x)
    idx = torch.arange(out_len, dtype=acc)
    src = ((idx + 0.5) * scale - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=L - 1)
    i1 = (i0 + 1).clamp(max=L - 1)
    lam = src - i0.to(acc)
    return x[..., i0] * (1.0 - lam) + x[..., i1] * lam


def rope_cos_sin(positions, dim, theta, dtype=F32):
    """cos, sin [N, dim] as transformers' LlamaRotaryEmbedding: inv_freq_k = 1/θ^(2k/dim) in fp32,
    freqs = pos·inv_freq in fp32, emb = cat(freqs, freqs); cos/sin taken in `dtype` of those fp32
    angles (fp32 in the model; float64 for the goldens, i.e. the exact cos of the fp32 angle)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(F32) / dim))
    freqs = positions.to(F32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1).to(dtype)
    return emb.cos(), emb.sin()


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat([-x[..., d:], x[..., :d]], dim=-1)


def rope(x, positions, theta):
    """Half-rotation (NeoX) RoPE over all D: x [B,H,N,D], positions [N]."""
    cos, sin = rope_cos_sin(positions, x.shape[-1], theta, acc_dtype(x))
    return x * cos + rotate_half(x) * sin


def swiglu(x, gate_w, up_w, down_w):
    """down(silu(gate x) ⊙ up x)."""
    return linear(silu(linear(x, gate_w)) * linear(x, up_w), down_w)


def moe_route(x, gate_w, top_k, norm_topk_prob=False, routed_scaling_factor=1.0):
    """DeepSeek-V2 MoEGate (softmax, greedy): logits = x_fp32 W_gateᵀ, softmax in fp32, top-k.

    Returns (ids [T,k] int64, weights [T,k] fp32), ordered by descending probability (ties: lower
    id first). The official code takes torch.topk(sorted=False); the set and the sum do not depend
    on the order, and the goldens store this sorted order so that the ids compare exactly.
    """
    acc = acc_dtype(x)
    logits = torch.matmul(x.to(acc), gate_w.to(acc).t())
    scores = softmax(logits)
    # stable descending sort: ties keep the lower expert id first
    order = torch.sort(-scores, dim=-1, stable=True).indices[:, :top_k]
    w = torch.gather(scores, 1, order)
    if top_k > 1 and norm_topk_prob:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    else:
        w = w * routed_scaling_factor
    return order, w


def moe(x, weights, top_k, norm_topk_prob=False, routed_scaling_factor=1.0):
    """DeepSeek-V2 MoE: y = Σ_k p_k·E_k(x) (fp32) + Shared(x).

    x [T, hidden]; weights: dict with 'gate.weight', 'experts.{e}.{gate,up,down}_proj.weight',
    optional 'shared_experts.{gate,up,down}_proj.weight'. Returns (y, ids, weights).
    """
    ids, w = moe_route(x, weights["gate.weight"], top_k, norm_topk_prob, routed_scaling_factor)
    t = x.shape[0]
    acc = acc_dtype(x)
    y = torch.zeros(t, x.shape[1], dtype=acc)
    for e in torch.unique(ids).tolist():
        tok, slot = torch.nonzero(ids == e, as_tuple=True)
        p = f"experts.{e}."
        out = swiglu(x[tok], weights[p + "gate_proj.weight"], weights[p + "up_proj.weight"],
                     weights[p + "down_proj.weight"])
        y.index_add_(0, tok, out.to(acc) * w[tok, slot][:, None])
    y = y.to(x.dtype)
    if "shared_experts.gate_proj.weight" in weights:
        y = y + swiglu(x, weights["shared_experts.gate_proj.weight"], weights["shared_experts.up_proj.weight"],
                       weights["shared_experts.down_proj.weight"])
    return y, ids, w


# ---- SAM relative position (used by the model and by the sam goldens) ----

def sam_rel_table(table, k):
    """The [2k-1, C] relative-position table for k×k attention: the stored table, or when its length
    differs, resize_linear of it in fp32 (official get_rel_pos)."""
    L = 2 * k - 1
    if table.shape[0] == L:
        return table
    t = table.to(acc_dtype(table)).t()[None]  # [1, C, len]
    return resize_linear(t, L)[0].t().to(table.dtype)


def sam_rel_bias(q, table_h, table_w, hq, wq):
    """Decomposed relative bias of SAM: q [B, hq·wq, C] (UNSCALED q), tables [len, C].

    bias[b, (qh,qw), (kh,kw)] = <q, Rh[qh,kh]> + <q, Rw[qw,kw]>, Rh[i,j] = Th[i-j+hq-1].
    Returns [B, hq·wq, hq·wq]. (q size = k size here, as in every SAM block.)
    """
    th = sam_rel_table(table_h, hq)
    tw = sam_rel_table(table_w, wq)
    ih = torch.arange(hq)
    iw = torch.arange(wq)
    rh = th[(ih[:, None] - ih[None, :] + hq - 1)]  # [hq, hq, C]
    rw = tw[(iw[:, None] - iw[None, :] + wq - 1)]  # [wq, wq, C]
    b, n, c = q.shape
    rq = q.reshape(b, hq, wq, c)
    rel_h = torch.einsum("bhwc,hkc->bhwk", rq, rh)  # [B,hq,wq,hq]
    rel_w = torch.einsum("bhwc,wkc->bhwk", rq, rw)  # [B,hq,wq,wq]
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return bias.reshape(b, hq * wq, hq * wq)

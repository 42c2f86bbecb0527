"""bench/torch_bench.py's op variants for the reference model (reference/dsocr_ref): the
reference's own formulas made device-aware (--ops reference) and the torch calls of the official
Hugging Face code (--ops official), installed into dsocr_ref.ops / dsocr_ref.model by install_ops."""
import math

import torch
import torch.nn.functional as F

from torch_bench_common import HAS_SDPA, modelmod, note, ops


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

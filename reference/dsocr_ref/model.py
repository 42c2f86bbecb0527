"""DeepSeek-OCR v1 in plain torch (fp32 compute), module names equal to the official checkpoint's
(model-spec §2.2): `model.sam_model.*`, `model.vision_model.*`, `model.projector.layers.*`,
`model.image_newline`, `model.view_seperator`, `model.embed_tokens`, `model.layers.N.*`,
`model.norm`, `lm_head`.

Every forward can record intermediates into a `taps` dict (name -> tensor) for the goldens.
"""
import math

import torch
from torch import nn

from . import ops
from .config import Config


_DEVICE = ["cpu"]  # "meta" builds the full-size tree without memory (key/shape checks)


def _p(shape):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return nn.Parameter(torch.empty(*shape, device=_DEVICE[0]))


class Embedding(nn.Module):
    def __init__(self, n, dim):
        super().__init__()
        self.weight = _p((n, dim))


class Linear(nn.Module):
    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = _p((n_out, n_in))
        self.bias = _p((n_out)) if bias else None

    def forward(self, x):
        return ops.linear(x, self.weight, self.bias)


class Conv2d(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = _p((c_out, c_in, k, k))
        self.bias = _p((c_out)) if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x):
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class LayerNorm(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        self.weight = _p((c))
        self.bias = _p((c))
        self.eps = eps

    def forward(self, x):
        return ops.layer_norm(x, self.weight, self.bias, self.eps)


class LayerNorm2d(LayerNorm):
    def forward(self, x):
        return ops.layer_norm_2d(x, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    def __init__(self, c, eps):
        super().__init__()
        self.weight = _p((c))
        self.eps = eps

    def forward(self, x):
        return ops.rms_norm(x, self.weight, self.eps)


# ============================================================================ SAM ViT-B
class PatchEmbed(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = Conv2d(3, c.sam_width, c.sam_patch_size, c.sam_patch_size, 0, bias=True)

    def forward(self, x):  # [B,3,S,S] -> [B,S/16,S/16,C]
        return self.proj(x).permute(0, 2, 3, 1)


class SamAttention(nn.Module):
    def __init__(self, dim, heads, table_len):
        super().__init__()
        self.num_heads = heads
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        hd = dim // heads
        self.rel_pos_h = _p((table_len, hd))
        self.rel_pos_w = _p((table_len, hd))

    def forward(self, x):  # x [B,H,W,C] (B = windows·batch in window blocks)
        b, h, w, c = x.shape
        nh = self.num_heads
        qkv = self.qkv(x).reshape(b, h * w, 3, nh, -1).permute(2, 0, 3, 1, 4)  # [3,B,nh,N,hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        # decomposed relative bias from the UNSCALED q
        bias = ops.sam_rel_bias(q.reshape(b * nh, h * w, -1), self.rel_pos_h, self.rel_pos_w, h, w)
        bias = bias.reshape(b, nh, h * w, h * w)
        o = ops.sdpa(q, k, v, bias, scale=1.0 / math.sqrt(q.shape[-1]))  # [B,nh,N,hd]
        o = o.reshape(b, nh, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, c)
        return self.proj(o)


class SamMLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.lin1 = Linear(dim, hidden)
        self.lin2 = Linear(hidden, dim)

    def forward(self, x):
        return self.lin2(ops.gelu(self.lin1(x)))


def window_partition(x, ws):
    """[B,H,W,C] -> ([B·nw, ws, ws, C], (Hp, Wp)): zero-pad bottom/right, windows row-major."""
    b, h, w, c = x.shape
    ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
    if ph or pw:
        xp = torch.zeros(b, h + ph, w + pw, c, dtype=x.dtype)
        xp[:, :h, :w] = x
        x = xp
    hp, wp = h + ph, w + pw
    x = x.reshape(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c), (hp, wp)


def window_unpartition(win, ws, pad_hw, hw):
    hp, wp = pad_hw
    h, w = hw
    b = win.shape[0] // (hp * wp // ws // ws)
    x = win.reshape(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w].contiguous()


class SamBlock(nn.Module):
    def __init__(self, c: Config, window_size):
        super().__init__()
        self.window_size = window_size
        self.norm1 = LayerNorm(c.sam_width, c.sam_ln_eps)
        table = 2 * window_size - 1 if window_size > 0 else 2 * c.sam_grid - 1
        self.attn = SamAttention(c.sam_width, c.sam_heads, table)
        self.norm2 = LayerNorm(c.sam_width, c.sam_ln_eps)
        self.mlp = SamMLP(c.sam_width, int(c.sam_width * c.sam_mlp_ratio))

    def forward(self, x, taps=None, prefix=""):
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        x = shortcut + x
        if taps is not None:
            taps[prefix + "attn_residual"] = x
        return x + self.mlp(self.norm2(x))


class SamEncoder(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.patch_embed = PatchEmbed(c)
        self.pos_embed = _p((1, c.sam_grid, c.sam_grid, c.sam_width))
        self.blocks = nn.ModuleList(
            SamBlock(c, 0 if i in c.sam_global_blocks else c.sam_window_size) for i in range(c.sam_layers))
        self.neck = nn.Sequential(
            Conv2d(c.sam_width, c.sam_out_chans, 1, bias=False),
            LayerNorm2d(c.sam_out_chans, c.sam_ln_eps),
            Conv2d(c.sam_out_chans, c.sam_out_chans, 3, padding=1, bias=False),
            LayerNorm2d(c.sam_out_chans, c.sam_ln_eps),
        )
        d1, d2 = c.sam_downsample_channels
        self.net_2 = Conv2d(c.sam_out_chans, d1, 3, 2, 1, bias=False)
        self.net_3 = Conv2d(d1, d2, 3, 2, 1, bias=False)

    def abs_pos(self, g):
        """pos_embed resized to g×g with bicubic antialias (fp32) when g differs."""
        pe = self.pos_embed
        if pe.shape[1] == g:
            return pe
        return ops.resize_bicubic_aa(pe.permute(0, 3, 1, 2).float(), g, g).to(pe.dtype).permute(0, 2, 3, 1)

    def forward(self, pixels, taps=None):  # [B,3,S,S] -> [B, d2, S/64, S/64]
        x = self.patch_embed(pixels)
        if taps is not None:
            taps["patch_embed"] = x
        x = x + self.abs_pos(x.shape[1])
        if taps is not None:
            taps["pos_added"] = x
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if taps is not None:
                taps[f"blocks.{i}"] = x
        x = self.neck(x.permute(0, 3, 1, 2))
        if taps is not None:
            taps["neck"] = x
        x = self.net_2(x)
        if taps is not None:
            taps["net_2"] = x
        x = self.net_3(x)
        return x


# ============================================================================ CLIP-L (fed by SAM)
class ClipEmbeddings(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.class_embedding = _p((c.clip_width))
        # unused by DeepSeek-OCR (the SAM features replace the patch embedding), but in the checkpoint
        self.patch_embedding = Conv2d(3, c.clip_width, c.clip_patch_size, c.clip_patch_size, bias=False)
        self.position_embedding = nn.Module()
        self.position_embedding.weight = _p((c.clip_grid ** 2 + 1, c.clip_width))

    def forward(self, sam_features):  # [B,C,h,w] -> [B,h·w+1,C]
        b, ch, h, w = sam_features.shape
        assert h == w, "CLIP position resize is square"
        x = sam_features.flatten(2).transpose(1, 2)
        cls = self.class_embedding.reshape(1, 1, -1).expand(b, 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = self.position_embedding.weight
        g = int(math.isqrt(pos.shape[0] - 1))
        if g != h:
            grid = pos[1:].reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
            grid = ops.resize_bicubic_aa(grid, h, w).to(pos.dtype).permute(0, 2, 3, 1).reshape(h * w, -1)
            pos = torch.cat([pos[:1], grid], dim=0)
        return x + pos[None]


class ClipAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.qkv_proj = Linear(dim, 3 * dim)
        self.out_proj = Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv_proj(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        o = ops.sdpa(qkv[0], qkv[1], qkv[2])
        return self.out_proj(o.permute(0, 2, 1, 3).reshape(b, n, c))


class ClipMLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(ops.quick_gelu(self.fc1(x)))


class ClipLayer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.self_attn = ClipAttention(c.clip_width, c.clip_heads)
        self.layer_norm1 = LayerNorm(c.clip_width, c.clip_ln_eps)
        self.mlp = ClipMLP(c.clip_width, int(c.clip_width * c.clip_mlp_ratio))
        self.layer_norm2 = LayerNorm(c.clip_width, c.clip_ln_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList(ClipLayer(c) for _ in range(c.clip_layers))


class ClipEncoder(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embeddings = ClipEmbeddings(c)
        self.transformer = ClipTransformer(c)
        self.pre_layrnorm = LayerNorm(c.clip_width, c.clip_ln_eps)

    def forward(self, sam_features, taps=None):  # -> [B, h·w+1, C] (CLS first, no post-norm)
        x = self.embeddings(sam_features)
        if taps is not None:
            taps["embeddings"] = x
        x = self.pre_layrnorm(x)
        if taps is not None:
            taps["pre_layrnorm"] = x
        for i, layer in enumerate(self.transformer.layers):
            x = layer(x)
            if taps is not None:
                taps[f"layers.{i}"] = x
        return x


# ============================================================================ DeepSeek-V2 decoder
class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.gate_proj = Linear(dim, hidden, bias=False)
        self.up_proj = Linear(dim, hidden, bias=False)
        self.down_proj = Linear(hidden, dim, bias=False)

    def forward(self, x):
        return ops.swiglu(x, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)


class MoEGate(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.weight = _p((c.n_routed_experts, c.hidden_size))


class MoE(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.gate = MoEGate(c)
        self.experts = nn.ModuleList(MLP(c.hidden_size, c.moe_intermediate_size) for _ in range(c.n_routed_experts))
        self.shared_experts = (MLP(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts)
                               if c.n_shared_experts else None)

    def forward(self, x, taps=None, prefix=""):
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        w = {k: v for k, v in self.named_parameters()}
        y, ids, tw = ops.moe(flat, w, self.c.num_experts_per_tok, self.c.norm_topk_prob, self.c.routed_scaling_factor)
        if taps is not None:
            taps[prefix + "topk_ids"] = ids
            taps[prefix + "topk_weights"] = tw
        return y.reshape(shape)


class Attention(nn.Module):
    """transformers LlamaAttention as DeepSeek-OCR uses it (use_mla false): MHA/GQA, no bias,
    NeoX RoPE over the whole head, causal."""

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        h, hd, hkv = c.num_attention_heads, c.head_dim, c.num_key_value_heads
        self.q_proj = Linear(c.hidden_size, h * hd, bias=False)
        self.k_proj = Linear(c.hidden_size, hkv * hd, bias=False)
        self.v_proj = Linear(c.hidden_size, hkv * hd, bias=False)
        self.o_proj = Linear(h * hd, c.hidden_size, bias=False)

    def forward(self, x, positions, kv_cache=None):  # x [T, hidden] (one sequence)
        c = self.c
        t = x.shape[0]
        q = self.q_proj(x).reshape(t, c.num_attention_heads, c.head_dim).transpose(0, 1)[None]
        k = self.k_proj(x).reshape(t, c.num_key_value_heads, c.head_dim).transpose(0, 1)[None]
        v = self.v_proj(x).reshape(t, c.num_key_value_heads, c.head_dim).transpose(0, 1)[None]
        q = ops.rope(q, positions, c.rope_theta)
        k = ops.rope(k, positions, c.rope_theta)
        if kv_cache is not None:
            if "k" in kv_cache:
                k = torch.cat([kv_cache["k"], k], dim=2)
                v = torch.cat([kv_cache["v"], v], dim=2)
            kv_cache["k"], kv_cache["v"] = k, v
        o = ops.sdpa(q, k, v, None, 1.0 / math.sqrt(c.head_dim), causal=True)  # [1,H,T,hd]
        return self.o_proj(o[0].transpose(0, 1).reshape(t, -1))


class DecoderLayer(nn.Module):
    def __init__(self, c: Config, idx):
        super().__init__()
        self.idx = idx
        self.self_attn = Attention(c)
        self.mlp = MoE(c) if c.is_moe_layer(idx) else MLP(c.hidden_size, c.intermediate_size)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, positions, taps=None, prefix="", kv_cache=None):
        h = x + self.self_attn(self.input_layernorm(x), positions, kv_cache)
        if taps is not None:
            taps[prefix + "attn_residual"] = h
        y = self.post_attention_layernorm(h)
        if isinstance(self.mlp, MoE):
            y = self.mlp(y, taps, prefix)
        else:
            y = self.mlp(y)
        return h + y


# ============================================================================ the whole model
class Projector(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = Linear(c.projector_input_dim, c.n_embed)


class DeepseekOCRModel(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.embed_tokens = Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(c, i) for i in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.sam_model = SamEncoder(c)
        self.vision_model = ClipEncoder(c)
        self.projector = Projector(c)
        self.image_newline = _p((c.n_embed))
        self.view_seperator = _p((c.n_embed))


class DeepseekOCR(nn.Module):
    """DeepseekOCRForCausalLM: .model and .lm_head, state_dict keys as the official checkpoint."""

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.model = DeepseekOCRModel(c)
        self.lm_head = Linear(c.hidden_size, c.vocab_size, bias=False)

    # ---- vision
    def encode_view(self, pixels, taps=None, prefix=""):
        """pixels [n,3,S,S] -> projected features [n, (S/64)², n_embed] (SAM -> CLIP -> concat -> projector)."""
        m = self.model
        st = {} if taps is not None else None
        sam = m.sam_model(pixels, st)
        ct = {} if taps is not None else None
        clip = m.vision_model(sam, ct)
        feats = torch.cat([clip[:, 1:], sam.flatten(2).transpose(1, 2)], dim=-1)
        proj = m.projector.layers(feats)
        if taps is not None:
            taps[prefix + "sam"] = sam
            taps[prefix + "clip"] = clip
            taps[prefix + "projected"] = proj
        return proj

    def vision_embeddings(self, global_view, tiles=None, grid=None, taps=None):
        """[tiles mosaic with image_newline per row..., global rows + newline..., view_seperator]
        global_view [1,3,G,G]; tiles [n,3,T,T] or None; grid (cols, rows)."""
        m = self.model
        nl = m.image_newline
        parts = []
        if tiles is not None and tiles.shape[0] > 0:
            cols, rows = int(grid[0]), int(grid[1])
            assert cols * rows == tiles.shape[0]
            loc = self.encode_view(tiles, taps, "tiles.")  # [n, hw, C]
            hw, ch = loc.shape[1], loc.shape[2]
            s = int(math.isqrt(hw))
            loc = loc.reshape(rows, cols, s, s, ch).permute(0, 2, 1, 3, 4).reshape(rows * s, cols * s, ch)
            loc = torch.cat([loc, nl.reshape(1, 1, -1).expand(rows * s, 1, ch)], dim=1)
            parts.append(loc.reshape(-1, ch))
        glo = self.encode_view(global_view, taps, "global.")[0]  # [hw, C]
        hw, ch = glo.shape
        s = int(math.isqrt(hw))
        glo = torch.cat([glo.reshape(s, s, ch), nl.reshape(1, 1, -1).expand(s, 1, ch)], dim=1)
        parts.append(glo.reshape(-1, ch))
        parts.append(m.view_seperator.reshape(1, -1))
        return torch.cat(parts, dim=0)

    # ---- language model
    def embed(self, input_ids, image_embeds=None, image_token_id=None):
        x = self.model.embed_tokens.weight[input_ids]
        if image_embeds is not None:
            mask = input_ids == image_token_id
            assert int(mask.sum()) == image_embeds.shape[0], (int(mask.sum()), image_embeds.shape)
            x = x.clone()
            x[mask] = image_embeds.to(x.dtype)
        return x

    def decode(self, x, positions, taps=None, kv_caches=None):
        """x [T, hidden] embeddings -> logits [T, vocab] (float32)."""
        for i, layer in enumerate(self.model.layers):
            x = layer(x, positions, taps, f"layers.{i}.", kv_caches[i] if kv_caches is not None else None)
            if taps is not None:
                taps[f"layers.{i}"] = x
        x = self.model.norm(x)
        if taps is not None:
            taps["norm"] = x
        return self.lm_head(x).float()

    def logits(self, input_ids, image_embeds=None, image_token_id=None, taps=None):
        x = self.embed(input_ids, image_embeds, image_token_id)
        if taps is not None:
            taps["embeddings"] = x
        pos = torch.arange(input_ids.shape[0])
        return self.decode(x, pos, taps)


def build(c: Config, device="cpu") -> DeepseekOCR:
    """DeepseekOCR, or DeepSeek-OCR-2's model (dsocr_ref.ocr2) when c.version is 2."""
    _DEVICE[0] = device
    try:
        if c.version == 2:
            from .ocr2 import DeepseekOCR2
            return DeepseekOCR2(c)
        return DeepseekOCR(c)
    finally:
        _DEVICE[0] = "cpu"

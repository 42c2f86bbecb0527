"""DeepSeek-OCR-2 in plain torch (fp32 compute), next to the v1 model of dsocr_ref.model
(docs/model-spec.md §0, §1.3, §1.4, §3, §5). Module names equal the official checkpoint's (§2.2):
`model.sam_model.*` (v1's SAM, net_3 to the encoder width), `model.qwen2_model.model.model.layers.N.*`
and `.norm` (note the doubled `model.model`), `model.qwen2_model.query_768` / `query_1024`,
`model.projector.layers.*` (896 -> 1280), `model.view_seperator` (no `image_newline`), and the same
language model as v1.

The encoder (official qwen2_d2e.py, `Qwen2Decoder2Encoder`): the SAM map [B,D,h,w] is flattened
row-major to N tokens, N learned queries are appended (query_768 when N is 144, query_1024 when N is
256; the official code has no other case), positions are 0…2N-1, every layer is a Qwen2 decoder
layer (RMSNorm, GQA attention with q/k/v bias and NeoX RoPE θ 1e6, SwiGLU), the final norm is applied
and only the last N outputs (the queries) are kept. The attention mask is the paper's
M = [[1, 0], [1, LowerTri]]: image↔image full, image→query blocked, query→image full,
query→query causal; i.e. causal attention in which the keys j < N are visible to every query,
which is exactly ops.sdpa(causal=True, causal_prefix=N) (the golden contract's sdpa attribute).
"""
import math

import torch
from torch import nn

from . import model as M
from . import ops
from .config import Config


def encoder_mask(n, dtype=torch.float32, blocked=float("-inf")):
    """The official additive mask [2N, 2N] written block by block (model-spec §1.3): 0 where allowed,
    `blocked` elsewhere (HF fills finfo(dtype).min, MLX -1e9; every row keeps allowed keys, so the
    softmax is the same)."""
    m = torch.full((2 * n, 2 * n), blocked, dtype=dtype)
    m[:n, :n] = 0.0  # image -> image: all
    m[n:, :n] = 0.0  # query -> image: all
    tri = torch.ones(n, n, dtype=torch.bool).tril()
    m[n:, n:] = torch.where(tri, torch.zeros((), dtype=dtype), torch.full((), blocked, dtype=dtype))
    return m  # image -> query stays blocked


class Qwen2Attention(nn.Module):
    """transformers Qwen2Attention (sdpa/eager): q/k/v with bias, o_proj without; GQA (query head h
    reads kv head h // (H/Hkv)); NeoX RoPE over the whole head; scale 1/sqrt(head_dim)."""

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        d, h, hkv, hd = c.qwen2_hidden, c.qwen2_heads, c.qwen2_kv_heads, c.qwen2_head_dim
        self.q_proj = M.Linear(d, h * hd, bias=True)
        self.k_proj = M.Linear(d, hkv * hd, bias=True)
        self.v_proj = M.Linear(d, hkv * hd, bias=True)
        self.o_proj = M.Linear(h * hd, d, bias=False)

    def forward(self, x, positions, causal_prefix):  # x [B,T,D]
        c = self.c
        b, t, _ = x.shape
        hd = c.qwen2_head_dim
        q = self.q_proj(x).reshape(b, t, c.qwen2_heads, hd).transpose(1, 2)
        k = self.k_proj(x).reshape(b, t, c.qwen2_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).reshape(b, t, c.qwen2_kv_heads, hd).transpose(1, 2)
        q = ops.rope(q, positions, c.qwen2_rope_theta)
        k = ops.rope(k, positions, c.qwen2_rope_theta)
        o = ops.sdpa(q, k, v, None, 1.0 / math.sqrt(hd), causal=True, causal_prefix=causal_prefix)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, -1))


class Qwen2EncoderLayer(nn.Module):
    """Qwen2DecoderLayer: x += attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x))."""

    def __init__(self, c: Config):
        super().__init__()
        self.self_attn = Qwen2Attention(c)
        self.mlp = M.MLP(c.qwen2_hidden, c.qwen2_intermediate)
        self.input_layernorm = M.RMSNorm(c.qwen2_hidden, c.qwen2_rms_eps)
        self.post_attention_layernorm = M.RMSNorm(c.qwen2_hidden, c.qwen2_rms_eps)

    def forward(self, x, positions, causal_prefix, taps=None, prefix=""):
        h = x + self.self_attn(self.input_layernorm(x), positions, causal_prefix)
        if taps is not None:
            taps[prefix + "attn_residual"] = h
        return h + self.mlp(self.post_attention_layernorm(h))


class _Qwen2Stack(nn.Module):  # transformers Qwen2Model without embed_tokens: .layers, .norm
    def __init__(self, c: Config):
        super().__init__()
        self.layers = nn.ModuleList(Qwen2EncoderLayer(c) for _ in range(c.qwen2_layers))
        self.norm = M.RMSNorm(c.qwen2_hidden, c.qwen2_rms_eps)


class _Qwen2Decoder(nn.Module):  # the official CustomQwen2Decoder: holds the Qwen2Model as .model
    def __init__(self, c: Config):
        super().__init__()
        self.model = _Qwen2Stack(c)


class Qwen2Encoder(nn.Module):
    """`model.qwen2_model` (official Qwen2Decoder2Encoder): .model.model.{layers,norm}, query_768,
    query_1024. forward: SAM map [B,D,h,w] -> query outputs [B, h·w, D]."""

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.model = _Qwen2Decoder(c)
        self.query_768 = M.Embedding(c.qwen2_query_tile, c.qwen2_hidden)
        self.query_1024 = M.Embedding(c.qwen2_query_global, c.qwen2_hidden)

    def queries(self, n):
        """The learned queries for N image tokens: query_768 for 144, query_1024 for 256."""
        if n == self.query_768.weight.shape[0]:
            return self.query_768.weight
        if n == self.query_1024.weight.shape[0]:
            return self.query_1024.weight
        raise ValueError(f"DeepSeek-OCR-2 encoder: {n} image tokens; the official code has queries only for "
                         f"{self.query_768.weight.shape[0]} (768 tiles) and {self.query_1024.weight.shape[0]} "
                         "(the 1024 global view)")

    def run_layers(self, x, n_image, taps=None):
        """x [B, 2N, D] (N image tokens then N queries) -> the final-normed hidden states [B, 2N, D]."""
        pos = torch.arange(x.shape[1])
        for i, layer in enumerate(self.model.model.layers):
            x = layer(x, pos, n_image)
            if taps is not None:
                taps[f"layers.{i}"] = x
        return self.model.model.norm(x)

    def forward(self, feats, taps=None):
        b, d, h, w = feats.shape
        x = feats.flatten(2).transpose(1, 2)  # row-major tokens [B, N, D]
        n = h * w
        q = self.queries(n).to(x.dtype)
        x = torch.cat([x, q[None].expand(b, n, d)], dim=1)
        if taps is not None:
            taps["inputs_embeds"] = x
        return self.run_layers(x, n, taps)[:, n:]


class DeepseekOCR2Model(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.embed_tokens = M.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(M.DecoderLayer(c, i) for i in range(c.num_hidden_layers))
        self.norm = M.RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.sam_model = M.SamEncoder(c)  # net_3: 512 -> qwen2_hidden (config.py sets the channels)
        self.qwen2_model = Qwen2Encoder(c)
        self.projector = M.Projector(c)
        self.view_seperator = M._p((c.n_embed))


class DeepseekOCR2(M.DeepseekOCR):
    """DeepseekOCR2ForCausalLM: .model and .lm_head, state_dict keys as the official v2 checkpoint.
    The language model (embed, decode, logits, and generate.generate) is v1's, inherited; only the
    vision path differs. (nn.Module.__init__ is called directly: v1's __init__ builds CLIP.)"""

    def __init__(self, c: Config):
        nn.Module.__init__(self)
        if c.version != 2:
            raise ValueError("DeepseekOCR2 needs a DeepSeek-OCR-2 config (version 2)")
        self.c = c
        self.model = DeepseekOCR2Model(c)
        self.lm_head = M.Linear(c.hidden_size, c.vocab_size, bias=False)

    def encode_view(self, pixels, taps=None, prefix=""):
        """pixels [n,3,S,S] -> [n, (S/64)², n_embed]: SAM -> Qwen2 encoder (query outputs) -> projector."""
        m = self.model
        sam = m.sam_model(pixels)
        enc = m.qwen2_model(sam)
        proj = m.projector.layers(enc)
        if taps is not None:
            taps[prefix + "sam"] = sam
            taps[prefix + "qwen2"] = enc
            taps[prefix + "projected"] = proj
        return proj

    def vision_embeddings(self, global_view, tiles=None, grid=None, taps=None):
        """[tile 0 (144 tokens), tile 1, …, global (256), view_seperator] (model-spec §3): no newlines,
        tiles one after another in the order given (row-major over the grid). global_view [1,3,G,G];
        tiles [n,3,T,T] or None; grid (cols, rows) with cols·rows = n."""
        m = self.model
        parts = []
        if tiles is not None and tiles.shape[0] > 0:
            cols, rows = int(grid[0]), int(grid[1])
            if cols * rows != tiles.shape[0]:
                raise ValueError(f"grid {cols}x{rows} for {tiles.shape[0]} tiles")
            loc = self.encode_view(tiles, taps, "tiles.")
            parts.append(loc.reshape(-1, loc.shape[-1]))
        parts.append(self.encode_view(global_view, taps, "global.")[0])
        parts.append(m.view_seperator.reshape(1, -1))
        return torch.cat(parts, dim=0)

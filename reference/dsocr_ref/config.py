"""DeepSeek-OCR (v1) and DeepSeek-OCR-2 configuration: parses the official config.json layouts
(docs/model-spec.md §1.5).

- released (`model_type "deepseek_vl_v2"`, bf16): LM keys at the top level and in
  `language_config`, many keys omitted (the DeepseekV2Config defaults apply);
- re-saved (`model_type "DeepseekOCR"`, fp32): every key spelled out.
Top-level keys win over `language_config`, which wins over the defaults (the official
DeepseekOCRConfig builds its LM from the top-level keys).

Encoder sizes are fixed in the official code; a reduced (test) checkpoint describes its encoders
through `vision_config.width` (`sam_vit_b`: width, layers, heads, global_attn_indexes,
downsample_channels, plus the optional extras out_chans, window_size, mlp_ratio;
`clip-l-14-224`: width, layers, heads, plus the optional mlp_ratio). Absent extras take the
official values.

DeepSeek-OCR-2 (model-spec §0, §1.3) is recognised by any of: a `vision_config.width["qwen2-0-5b"]`
entry, `vision_config.model_name "deepencoderv2"`, or the architecture `DeepseekOCR2ForCausalLM`
(`version` 2). Its Qwen2 encoder width is `qwen2-0-5b.dim` (896); `net_3` outputs that width, so the
stale `sam_vit_b.downsample_channels[1]` (1024 in the release) is ignored. The official code fixes the
rest of the encoder (24 layers, 14 heads, 2 KV heads, SwiGLU 4864, RMSNorm 1e-6, RoPE θ 1e6); a
reduced checkpoint may describe it through the optional extras of `qwen2-0-5b`: layers, heads,
kv_heads, intermediate_size, rope_theta, rms_norm_eps (absent: the official values). The learned
queries are 144 (`query_768`, 768 tiles) and 256 (`query_1024`, the 1024 global view): fixed by the
12×12 and 16×16 SAM grids of those views, whatever the widths.
"""
import json
from dataclasses import dataclass, field, asdict
from typing import List

LM_DEFAULTS = dict(  # DeepseekV2Config defaults as they apply to DeepSeek-OCR (model-spec §1.5)
    vocab_size=129280, hidden_size=1280, intermediate_size=6848, moe_intermediate_size=896,
    num_hidden_layers=12, num_attention_heads=10, num_key_value_heads=10, n_shared_experts=2,
    n_routed_experts=64, num_experts_per_tok=6, first_k_dense_replace=1, moe_layer_freq=1,
    norm_topk_prob=False, routed_scaling_factor=1.0, scoring_func="softmax", topk_method="greedy",
    n_group=1, topk_group=1, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
    max_position_embeddings=8192, bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
    attention_bias=False, hidden_act="silu", use_mla=False,
)


@dataclass
class Config:
    # language model
    vocab_size: int = 129280
    hidden_size: int = 1280
    intermediate_size: int = 6848
    moe_intermediate_size: int = 896
    num_hidden_layers: int = 12
    num_attention_heads: int = 10
    num_key_value_heads: int = 10
    n_shared_experts: int = 2
    n_routed_experts: int = 64
    num_experts_per_tok: int = 6
    first_k_dense_replace: int = 1
    moe_layer_freq: int = 1
    norm_topk_prob: bool = False
    routed_scaling_factor: float = 1.0
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 8192
    bos_token_id: int = 0
    eos_token_id: int = 1
    # SAM ViT-B
    sam_width: int = 768
    sam_layers: int = 12
    sam_heads: int = 12
    sam_global_blocks: List[int] = field(default_factory=lambda: [2, 5, 8, 11])
    sam_window_size: int = 14
    sam_mlp_ratio: float = 4.0
    sam_out_chans: int = 256
    sam_downsample_channels: List[int] = field(default_factory=lambda: [512, 1024])
    sam_image_size: int = 1024  # pos_embed grid = sam_image_size / 16
    sam_patch_size: int = 16
    sam_ln_eps: float = 1e-6
    # CLIP-L/14
    clip_width: int = 1024
    clip_layers: int = 24
    clip_heads: int = 16
    clip_mlp_ratio: float = 4.0
    clip_image_size: int = 224
    clip_patch_size: int = 14
    clip_ln_eps: float = 1e-5
    # projector
    projector_input_dim: int = 2048
    n_embed: int = 1280
    # DeepSeek-OCR-2 (version 2): the Qwen2-0.5B-shaped encoder replaces CLIP (model-spec §1.3)
    version: int = 1
    qwen2_hidden: int = 896
    qwen2_layers: int = 24
    qwen2_heads: int = 14
    qwen2_kv_heads: int = 2
    qwen2_intermediate: int = 4864
    qwen2_rope_theta: float = 1000000.0
    qwen2_rms_eps: float = 1e-6
    qwen2_max_position_embeddings: int = 131072
    qwen2_query_tile: int = 144  # query_768 rows: a 768 tile's 12×12 SAM grid
    qwen2_query_global: int = 256  # query_1024 rows: the 1024 global view's 16×16 grid

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    @property
    def qwen2_head_dim(self):
        return self.qwen2_hidden // self.qwen2_heads

    @property
    def sam_grid(self):
        return self.sam_image_size // self.sam_patch_size

    @property
    def clip_grid(self):
        return self.clip_image_size // self.clip_patch_size

    def is_moe_layer(self, i):
        return (self.n_routed_experts is not None and i >= self.first_k_dense_replace
                and i % self.moe_layer_freq == 0)

    def to_dict(self):
        return asdict(self)


def from_dict(cfg: dict) -> Config:
    lm = dict(LM_DEFAULTS)
    lm.update({k: v for k, v in cfg.get("language_config", {}).items() if k in LM_DEFAULTS and v is not None})
    lm.update({k: v for k, v in cfg.items() if k in LM_DEFAULTS and v is not None})
    c = Config()
    for k in list(LM_DEFAULTS):
        if hasattr(c, k):
            setattr(c, k, type(getattr(c, k))(lm[k]) if lm[k] is not None else None)
    if lm.get("use_mla"):
        raise NotImplementedError("use_mla true: DeepSeek-OCR uses plain MHA")
    if lm.get("scoring_func") != "softmax" or lm.get("topk_method") != "greedy":
        raise NotImplementedError(f"router {lm.get('scoring_func')}/{lm.get('topk_method')}")
    vc = cfg.get("vision_config", {})
    width = vc.get("width", {}) if isinstance(vc.get("width"), dict) else {}
    sam = width.get("sam_vit_b", {})
    c.sam_width = int(sam.get("width", c.sam_width))
    c.sam_layers = int(sam.get("layers", c.sam_layers))
    c.sam_heads = int(sam.get("heads", c.sam_heads))
    c.sam_global_blocks = [int(i) for i in sam.get("global_attn_indexes", c.sam_global_blocks)]
    c.sam_downsample_channels = [int(i) for i in sam.get("downsample_channels", c.sam_downsample_channels)]
    c.sam_out_chans = int(sam.get("out_chans", c.sam_out_chans))
    c.sam_window_size = int(sam.get("window_size", c.sam_window_size))
    c.sam_mlp_ratio = float(sam.get("mlp_ratio", c.sam_mlp_ratio))
    clip = width.get("clip-l-14-224", {})
    c.clip_width = int(clip.get("width", c.clip_width))
    c.clip_layers = int(clip.get("layers", c.clip_layers))
    c.clip_heads = int(clip.get("heads", c.clip_heads))
    c.clip_mlp_ratio = float(clip.get("mlp_ratio", c.clip_mlp_ratio))
    c.clip_image_size = int(clip.get("image_size", c.clip_image_size))
    c.clip_patch_size = int(clip.get("patch_size", c.clip_patch_size))
    pc = cfg.get("projector_config", {})
    if pc.get("projector_type", "linear") != "linear":
        raise NotImplementedError(f"projector_type {pc.get('projector_type')}")
    if is_v2(cfg):
        _parse_qwen2(c, width.get("qwen2-0-5b", {}))
        c.projector_input_dim = c.qwen2_hidden
    c.projector_input_dim = int(pc.get("input_dim", c.projector_input_dim))
    c.n_embed = int(pc.get("n_embed", c.n_embed))
    if c.version == 2 and c.projector_input_dim != c.qwen2_hidden:
        raise ValueError(f"DeepSeek-OCR-2 projector input_dim {c.projector_input_dim} != encoder dim {c.qwen2_hidden}")
    return c


def is_v2(cfg: dict) -> bool:
    """A DeepSeek-OCR-2 config.json (see the module docstring)."""
    vc = cfg.get("vision_config", {}) or {}
    width = vc.get("width", {}) if isinstance(vc.get("width"), dict) else {}
    return ("qwen2-0-5b" in width or vc.get("model_name") == "deepencoderv2"
            or "DeepseekOCR2ForCausalLM" in (cfg.get("architectures") or []))


def _parse_qwen2(c: Config, q: dict):
    c.version = 2
    c.qwen2_hidden = int(q.get("dim", c.qwen2_hidden))
    c.qwen2_layers = int(q.get("layers", c.qwen2_layers))
    c.qwen2_heads = int(q.get("heads", c.qwen2_heads))
    c.qwen2_kv_heads = int(q.get("kv_heads", c.qwen2_kv_heads))
    c.qwen2_intermediate = int(q.get("intermediate_size", c.qwen2_intermediate))
    c.qwen2_rope_theta = float(q.get("rope_theta", c.qwen2_rope_theta))
    c.qwen2_rms_eps = float(q.get("rms_norm_eps", c.qwen2_rms_eps))
    if c.qwen2_hidden % c.qwen2_heads or c.qwen2_heads % c.qwen2_kv_heads:
        raise ValueError(f"qwen2 encoder: dim {c.qwen2_hidden}, heads {c.qwen2_heads}, kv_heads {c.qwen2_kv_heads}")
    # net_3 outputs the encoder width; the config's downsample_channels[1] is stale (model-spec §1.1)
    c.sam_downsample_channels = [c.sam_downsample_channels[0], c.qwen2_hidden]


def load(path) -> Config:
    with open(path) as f:
        return from_dict(json.load(f))


def tiny_config_dict(vocab_size):
    """config.json of the tiny test checkpoint: the released v1 layout (deepseek_vl_v2 style, LM
    keys at the top level and in language_config, defaults omitted as in the release) with tiny
    widths that keep every structural feature: windowed + global SAM blocks (the global ones
    resize their 127-row tables), CLIP with CLS, the projector, a dense first LM layer, MoE layers
    with shared experts and top-k > 1."""
    lm = dict(
        bos_token_id=0, eos_token_id=1, first_k_dense_replace=1, hidden_size=128,
        intermediate_size=256, kv_lora_rank=None, lm_head=True, max_position_embeddings=8192,
        moe_intermediate_size=32, n_group=1, n_routed_experts=8, n_shared_experts=2,
        num_attention_heads=2, num_experts_per_tok=3, num_hidden_layers=3, num_key_value_heads=2,
        q_lora_rank=None, qk_nope_head_dim=0, qk_rope_head_dim=0, rm_head=False, topk_group=1,
        topk_method="greedy", torch_dtype="bfloat16", use_mla=False, v_head_dim=0,
        vocab_size=vocab_size,
    )
    top = {
        "_name_or_path": "dsocr/tiny-random-deepseek-ocr",
        "architectures": ["DeepseekOCRForCausalLM"],
        "auto_map": {"AutoConfig": "modeling_deepseekocr.DeepseekOCRConfig",
                     "AutoModel": "modeling_deepseekocr.DeepseekOCRForCausalLM"},
        "candidate_resolutions": [[1024, 1024]],
        "global_view_pos": "head",
        "language_config": dict(
            architectures=["DeepseekV2ForCausalLM"],
            auto_map={"AutoConfig": "configuration_deepseekv2.DeepseekV2Config",
                      "AutoModel": "modeling_deepseek.DeepseekV2Model",
                      "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM"},
            **lm),
        "model_type": "deepseek_vl_v2",
        "projector_config": {"input_dim": 128, "model_type": "mlp_projector", "n_embed": 128,
                             "projector_type": "linear"},
        "tile_tag": "2D",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3",
        "vision_config": {
            "image_size": 1024, "mlp_ratio": 3.7362, "model_name": "deeplip_b_l", "model_type": "vision",
            "width": {
                "clip-l-14-224": {"heads": 2, "image_size": 224, "layers": 2, "patch_size": 14, "width": 64},
                "sam_vit_b": {"downsample_channels": [32, 64], "global_attn_indexes": [1, 3], "heads": 2,
                              "layers": 4, "width": 32, "out_chans": 16},
            },
        },
    }
    top.update({k: v for k, v in lm.items() if k not in ("torch_dtype",)})
    return top


def tiny_config_dict_v2(vocab_size):
    """config.json of the tiny DeepSeek-OCR-2 test checkpoint: the released v2 layout
    (`DeepseekOCR2ForCausalLM`, `deepencoderv2`, a `qwen2-0-5b` entry) over the tiny v1 LM and SAM,
    keeping every structural feature of the encoder: GQA with 6 query heads on 2 KV heads (groups of
    3, as 14 on 2 make groups of 7), head size 8, several layers, q/k/v biases, SwiGLU, the stale
    `downsample_channels[1]` (64, ignored: net_3 outputs `dim` 48), projector 48 -> 128."""
    top = tiny_config_dict(vocab_size)
    top["_name_or_path"] = "dsocr/tiny-random-deepseek-ocr-2"
    top["architectures"] = ["DeepseekOCR2ForCausalLM"]
    top["auto_map"] = {"AutoConfig": "modeling_deepseekocr2.DeepseekOCR2Config",
                       "AutoModel": "modeling_deepseekocr2.DeepseekOCR2ForCausalLM"}
    top["projector_config"] = {"input_dim": 48, "model_type": "mlp_projector", "n_embed": 128,
                               "projector_type": "linear"}
    top["vision_config"] = {
        "image_size": 1024, "mlp_ratio": 3.7362, "model_name": "deepencoderv2", "model_type": "vision",
        "width": {
            "qwen2-0-5b": {"dim": 48, "layers": 3, "heads": 6, "kv_heads": 2, "intermediate_size": 96},
            "sam_vit_b": {"downsample_channels": [32, 64], "global_attn_indexes": [1, 3], "heads": 2,
                          "layers": 4, "width": 32, "out_chans": 16},
        },
    }
    return top

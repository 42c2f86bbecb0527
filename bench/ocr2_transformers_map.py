"""bench/ocr2_transformers.py's bridge to transformers' native DeepSeek-OCR-2 (`deepseek_ocr2`,
transformers >= 5.x): the official checkpoint's weight names -> transformers' names, the reference's
Config -> an equivalent DeepseekOcr2Config, building the transformers model from those weights
(strict: every missing, unexpected or unmapped key is reported), and the v2 FLOP count of
bench/model.cpp (vision_flop with the Qwen2 encoder, attention counted as dense).

The renames are written from the facts of transformers' conversion table for `deepseek_ocr2`
(src/transformers/conversion_mapping.py) and its module tree (modeling_deepseek_ocr2.py):

  official (= reference/dsocr_ref state_dict)          transformers
  model.sam_model.blocks.N.norm{1,2}.*                 model.vision_tower.sam_encoder.layers.N.layer_norm{1,2}.*
  model.sam_model.blocks.N.{attn,mlp}.*                model.vision_tower.sam_encoder.layers.N.{attn,mlp}.*
  model.sam_model.patch_embed.proj.*                   model.vision_tower.sam_encoder.patch_embed.projection.*
  model.sam_model.pos_embed                            model.vision_tower.sam_encoder.pos_embed
  model.sam_model.neck.{0,1,2,3}.*                     ...sam_encoder.neck.{conv1,layer_norm1,conv2,layer_norm2}.*
  model.sam_model.net_{2,3}.*                          ...sam_encoder.proj.conv{1,2}.*
  model.qwen2_model.model.model.{layers,norm}.*        model.vision_tower.vision_encoder.{layers,norm}.*
  model.qwen2_model.query_{768,1024}.weight            model.vision_tower.query_{768,1024}_resolution.weight
  model.projector.layers.*                             model.multi_modal_projector.*
  model.view_seperator                                 model.view_separator
  model.{embed_tokens,layers,norm}.*                   model.language_model.{embed_tokens,layers,norm}.*
  ...mlp.experts.E.{gate,up}_proj.weight [I,D]         ...mlp.experts.gate_up_proj [E, 2I, D] (gate rows first)
  ...mlp.experts.E.down_proj.weight [D,I]              ...mlp.experts.down_proj [E, D, I]
  lm_head.weight, mlp.gate.weight, shared_experts.*    unchanged
"""
import dataclasses
import re

import torch

from torch_bench_model import vision_flop

RENAMES = [  # (pattern on the official key, replacement); the first match applies
    (r"^model\.sam_model\.blocks\.(\d+)\.norm([12])\.", r"model.vision_tower.sam_encoder.layers.\1.layer_norm\2."),
    (r"^model\.sam_model\.blocks\.(\d+)\.(attn|mlp)\.", r"model.vision_tower.sam_encoder.layers.\1.\2."),
    (r"^model\.sam_model\.patch_embed\.proj\.", "model.vision_tower.sam_encoder.patch_embed.projection."),
    (r"^model\.sam_model\.pos_embed$", "model.vision_tower.sam_encoder.pos_embed"),
    (r"^model\.sam_model\.neck\.0\.", "model.vision_tower.sam_encoder.neck.conv1."),
    (r"^model\.sam_model\.neck\.1\.", "model.vision_tower.sam_encoder.neck.layer_norm1."),
    (r"^model\.sam_model\.neck\.2\.", "model.vision_tower.sam_encoder.neck.conv2."),
    (r"^model\.sam_model\.neck\.3\.", "model.vision_tower.sam_encoder.neck.layer_norm2."),
    (r"^model\.sam_model\.net_2\.", "model.vision_tower.sam_encoder.proj.conv1."),
    (r"^model\.sam_model\.net_3\.", "model.vision_tower.sam_encoder.proj.conv2."),
    (r"^model\.qwen2_model\.model\.model\.(layers|norm)\.", r"model.vision_tower.vision_encoder.\1."),
    (r"^model\.qwen2_model\.query_(768|1024)\.", r"model.vision_tower.query_\1_resolution."),
    (r"^model\.projector\.layers\.", "model.multi_modal_projector."),
    (r"^model\.view_seperator$", "model.view_separator"),
    (r"^model\.(embed_tokens|layers|norm)\.", r"model.language_model.\1."),
    (r"^lm_head\.weight$", "lm_head.weight"),
]
EXPERT = re.compile(r"^(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$")


def hf_name(key):
    """The transformers name of one (non-expert) official key, or None when no rule applies."""
    for pat, rep in RENAMES:
        if re.search(pat, key):
            return re.sub(pat, rep, key)
    return None


def map_state_dict(sd):
    """official state_dict -> (transformers state_dict, [official keys no rule maps]). Renamed
    tensors are the same tensors; each layer's routed experts are stacked into new ones."""
    out, unmapped, experts = {}, [], {}
    for k, v in sd.items():
        m = EXPERT.match(k)
        if m:
            experts.setdefault(m.group(1), {}).setdefault(m.group(3), {})[int(m.group(2))] = v
            continue
        name = hf_name(k)
        if name is None:
            unmapped.append(k)
        else:
            out[name] = v
    for prefix, parts in experts.items():
        n = len(parts.get("down", {}))
        if any(sorted(parts.get(p, {})) != list(range(n)) for p in ("gate", "up", "down")):
            unmapped += [f"{prefix}.* (experts not numbered 0..{n - 1} in gate/up/down)"]
            continue
        base = hf_name(prefix + ".")  # model.language_model.layers.N.mlp.experts.
        gate = torch.stack([parts["gate"][e] for e in range(n)])  # [E, I, D]
        up = torch.stack([parts["up"][e] for e in range(n)])
        out[base + "gate_up_proj"] = torch.cat([gate, up], dim=1)  # [E, 2I, D]: chunk(2) -> gate, up
        out[base + "down_proj"] = torch.stack([parts["down"][e] for e in range(n)])  # [E, D, I]
        del gate, up
    return out, unmapped


# ============================================================================ config
def hf_config(c, image_token_id):
    """The reference's Config (official sizes or the tiny ones) as transformers' DeepseekOcr2Config.
    Raises where the official model has a feature transformers' port cannot express."""
    from transformers import DeepseekOcr2Config

    if c.version != 2:
        raise ValueError("not a DeepSeek-OCR-2 config")
    if c.norm_topk_prob:
        raise NotImplementedError("norm_topk_prob true: transformers' deepseek_ocr2 router never normalises")
    if not c.n_shared_experts:
        raise NotImplementedError("no shared experts: transformers' deepseek_ocr2 MoE always has them")
    if (c.qwen2_query_tile, c.qwen2_query_global) != (144, 256):
        raise NotImplementedError("transformers' deepseek_ocr2 hard-codes 144 and 256 learned queries")
    text = dict(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        moe_intermediate_size=c.moe_intermediate_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, num_key_value_heads=c.num_key_value_heads,
        n_routed_experts=c.n_routed_experts, n_shared_experts=c.n_shared_experts,
        num_experts_per_tok=c.num_experts_per_tok, routed_scaling_factor=c.routed_scaling_factor,
        topk_method="greedy", n_group=1, topk_group=1, rms_norm_eps=c.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": c.rope_theta},
        max_position_embeddings=c.max_position_embeddings, bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id, hidden_act="silu", attention_bias=False, mlp_bias=False,
        tie_word_embeddings=False,
        mlp_layer_types=["sparse" if c.is_moe_layer(i) else "dense" for i in range(c.num_hidden_layers)],
    )
    sam = dict(
        hidden_size=c.sam_width, num_hidden_layers=c.sam_layers, num_attention_heads=c.sam_heads,
        global_attn_indexes=list(c.sam_global_blocks), window_size=c.sam_window_size, mlp_ratio=c.sam_mlp_ratio,
        output_channels=c.sam_out_chans, downsample_channels=list(c.sam_downsample_channels),
        image_size=c.sam_image_size, patch_size=c.sam_patch_size, layer_norm_eps=c.sam_ln_eps,
        hidden_act="gelu", qkv_bias=True, use_abs_pos=True, use_rel_pos=True,
    )
    enc = dict(
        hidden_size=c.qwen2_hidden, num_hidden_layers=c.qwen2_layers, num_attention_heads=c.qwen2_heads,
        num_key_value_heads=c.qwen2_kv_heads, intermediate_size=c.qwen2_intermediate, rms_norm_eps=c.qwen2_rms_eps,
        rope_parameters={"rope_type": "default", "rope_theta": c.qwen2_rope_theta},
        max_position_embeddings=c.qwen2_max_position_embeddings, hidden_act="silu", vocab_size=1,
        use_sliding_window=False,
    )
    return DeepseekOcr2Config(text_config=text, vision_config={"sam_config": sam, "encoder_config": enc},
                              image_token_id=image_token_id, tie_word_embeddings=False)


def config_facts(cfg):
    """What the built transformers config says about the points where ports tend to differ."""
    t, v = cfg.text_config, cfg.vision_config
    return {"text_rope_theta": t.rope_parameters["rope_theta"], "encoder_rope_theta": v.encoder_config.rope_parameters[
        "rope_theta"], "encoder_layer_types": sorted(set(v.encoder_config.layer_types)),
        "sam_downsample_channels": list(v.sam_config.downsample_channels), "sam_mlp_dim": v.sam_config.mlp_dim,
        "mlp_layer_types": list(t.mlp_layer_types), "tie_word_embeddings": cfg.tie_word_embeddings,
        "attn_implementation": cfg._attn_implementation,
        "experts_implementation": getattr(cfg, "_experts_implementation", None)}


# ============================================================================ the model
def build_hf(c, official_sd, dev, image_token_id, attn=None, experts=None):
    """transformers' DeepseekOcr2ForConditionalGeneration on `dev` (fp32) holding exactly the
    official weights. -> (model, report{unmapped, missing, unexpected, ...}); raises nothing on a key
    mismatch (the caller decides), but a shape mismatch raises (load_state_dict)."""
    from transformers import DeepseekOcr2ForConditionalGeneration
    from transformers.initialization import no_init_weights

    cfg = hf_config(c, image_token_id)
    kw = {"dtype": torch.float32}
    if attn:
        kw["attn_implementation"] = attn
    if experts:
        kw["experts_implementation"] = experts
    with torch.device(dev), no_init_weights():  # every parameter is overwritten below
        m = DeepseekOcr2ForConditionalGeneration._from_config(cfg, **kw)
    sd, unmapped = map_state_dict(official_sd)
    res = m.load_state_dict(sd, strict=False)
    del sd
    m.eval()
    m.requires_grad_(False)
    emb = m.model.language_model.embed_tokens.weight
    report = {"unmapped": unmapped, "missing": list(res.missing_keys), "unexpected": list(res.unexpected_keys),
              "lm_head_tied": m.lm_head.weight.data_ptr() == emb.data_ptr(),
              "rope_bad": rope_buffers_bad(m, c), "config": config_facts(m.config)}
    return m, report


def rope_buffers_bad(m, c):
    """The non-persistent RoPE tables (not in any state_dict) against 1/θ^(2k/d): names of wrong ones."""
    bad = []
    for name, theta, hd in (("model.vision_tower.vision_encoder.rotary_emb", c.qwen2_rope_theta, c.qwen2_head_dim),
                            ("model.language_model.rotary_emb", c.rope_theta, c.head_dim)):
        inv = m.get_submodule(name).inv_freq.detach().float().cpu()
        want = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        if inv.shape != want.shape or not torch.allclose(inv, want, rtol=1e-6, atol=0):
            bad.append(name)
    return bad


def report_ok(report):
    return not (report["unmapped"] or report["missing"] or report["unexpected"] or report["lm_head_tied"]
                or report["rope_bad"])


# ============================================================================ FLOPs
def vision_flop_v2(c, side):
    """bench/model.cpp vision_flop for DeepSeek-OCR-2: SAM (net_3 to the encoder width) + the Qwen2
    encoder over N image tokens + N queries (attention counted dense) + the projector."""
    f = vision_flop(dataclasses.replace(c, clip_layers=0), side)  # SAM + projector (896 -> n_embed)
    n = (side // c.sam_patch_size) ** 2 // 16
    t, d, hd = 2 * n, c.qwen2_hidden, c.qwen2_head_dim
    h, hkv = c.qwen2_heads, c.qwen2_kv_heads
    f += c.qwen2_layers * (2.0 * t * d * (h + 2 * hkv) * hd + 2.0 * t * h * hd * d + 4.0 * t * t * h * hd
                           + 2.0 * t * d * 3 * c.qwen2_intermediate)
    return f

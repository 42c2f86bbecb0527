"""Random checkpoints in the official Hugging Face layout (DeepSeek-OCR v1 and DeepSeek-OCR-2), and
loading any such checkpoint (the config.json says which model it is: config.is_v2).

Layout written: config.json (official keys), ONE bf16 shard model-00001-of-000001.safetensors +
model.safetensors.index.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
generation_config.json, processor_config.json.
"""
import json
import math
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from . import config as cfgmod
from . import model as modelmod
from . import tokenizer as tokmod

SHARD = "model-00001-of-000001.safetensors"


def random_init(m: modelmod.DeepseekOCR, seed):
    """Weights scaled so that activations stay O(1) through every layer, never zero or constant:
    linear/conv ~ N(0, 1/fan_in) (residual-branch outputs ×0.5), biases ~ N(0, 0.05²),
    norm weights 1 + N(0, 0.1²), norm biases N(0, 0.05²), SAM rel-pos tables N(0, 0.2²),
    position embeddings N(0, 0.5²), CLS / newline / separator / token embeddings and the v2 learned
    queries (query_768, query_1024) N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    resid_out = ("attn.proj.", "mlp.lin2.", "self_attn.out_proj.", "mlp.fc2.", "self_attn.o_proj.", "down_proj.")
    for name, p in m.named_parameters():
        shape = p.shape
        r = lambda s: torch.randn(*shape, generator=g) * s
        if name.endswith("norm.weight") or "layernorm" in name or "norm1." in name or "norm2." in name \
                or "layer_norm" in name or "pre_layrnorm" in name or name.startswith("model.sam_model.neck.1") \
                or name.startswith("model.sam_model.neck.3"):
            v = 1.0 + r(0.1) if name.endswith("weight") else r(0.05)
        elif name.endswith(".bias"):
            v = r(0.05)
        elif "rel_pos_" in name:
            v = r(0.2)
        elif name.endswith("pos_embed") or "position_embedding" in name:
            v = r(0.5)
        elif name.endswith(("class_embedding", "image_newline", "view_seperator", "query_768.weight",
                            "query_1024.weight")) or "embed_tokens" in name:
            v = r(1.0)
        elif p.dim() >= 2:
            fan_in = int(torch.tensor(shape[1:]).prod())
            s = 1.0 / math.sqrt(fan_in)
            if any(k in name for k in resid_out):
                s *= 0.5
            v = r(s)
        else:
            raise ValueError(f"no init rule for {name} {tuple(shape)}")
        with torch.no_grad():
            p.copy_(v)
    return m


def round_bf16_(m):
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    return m


def save(m: modelmod.DeepseekOCR, out_dir, config_dict, tok=None, added=None):
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in m.state_dict().items()}
    save_file(sd, os.path.join(out_dir, SHARD), metadata={"format": "pt"})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    index = {"metadata": {"total_size": total}, "weight_map": {k: SHARD for k in sorted(sd)}}
    _json(os.path.join(out_dir, "model.safetensors.index.json"), index)
    _json(os.path.join(out_dir, "config.json"), config_dict)
    _json(os.path.join(out_dir, "generation_config.json"),
          {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 1, "transformers_version": "4.46.3"})
    _json(os.path.join(out_dir, "processor_config.json"), {
        "add_special_token": False, "candidate_resolutions": [[1024, 1024]], "downsample_ratio": 4,
        "ignore_id": -100, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "image_token": "<image>",
        "mask_prompt": False, "normalize": True, "pad_token": tokmod.PAD, "patch_size": 16,
        "processor_class": "DeepseekVLV2Processor", "sft_format": "deepseek"})
    if tok is not None:
        tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=False)
        _json(os.path.join(out_dir, "tokenizer_config.json"), tokmod.tokenizer_config(added))
        _json(os.path.join(out_dir, "special_tokens_map.json"), tokmod.special_tokens_map())


def _json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_state_dict(ckpt_dir):
    """All tensors of the checkpoint (index or single file), each as stored (dtype from the header)."""
    idx = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".safetensors"))
    sd = {}
    for fn in files:
        with safe_open(os.path.join(ckpt_dir, fn), framework="pt") as f:
            for k in f.keys():
                sd[k] = f.get_tensor(k)
    return sd


def load(ckpt_dir):
    """-> (model in fp32, Config). position_ids (re-saves only) is ignored."""
    c = cfgmod.load(os.path.join(ckpt_dir, "config.json"))
    m = modelmod.build(c)
    sd = read_state_dict(ckpt_dir)
    sd.pop("model.vision_model.embeddings.position_ids", None)
    sd = {k: v.to(torch.float32) for k, v in sd.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise KeyError(f"checkpoint {ckpt_dir}: missing {missing[:5]}..., unexpected {unexpected[:5]}...")
    m.eval()
    return m, c


def write_tiny(out_dir, seed=1234, version=1):
    """The tiny test checkpoint: tiny tokenizer + tiny config + random bf16 weights.
    version 2: DeepSeek-OCR-2's layout (config.tiny_config_dict_v2; qwen2 encoder instead of CLIP)."""
    tok, id_map, added = tokmod.build_tiny()
    n = tok.get_vocab_size()
    vocab = (n + 63) // 64 * 64  # padding rows, as the official 129280 > 128827
    cd = cfgmod.tiny_config_dict(vocab) if version == 1 else cfgmod.tiny_config_dict_v2(vocab)
    c = cfgmod.from_dict(cd)
    m = modelmod.build(c)
    random_init(m, seed)
    with torch.no_grad():
        # keep EOS improbable so that generation goldens run their full length, and the padding
        # rows (no token behind them, as the official 128827-129279) out of the greedy choice
        m.lm_head.weight[c.eos_token_id] *= 0.05
        m.lm_head.weight[n:] *= 0.05
    round_bf16_(m)
    save(m, out_dir, cd, tok, added)
    return m, c, tok


def write_tiny_v2(out_dir, seed=4321):
    """The tiny DeepSeek-OCR-2 test checkpoint (same tokenizer and LM shape as v1's tiny one)."""
    return write_tiny(out_dir, seed, version=2)

"""The demo model's configuration: DeepSeek-OCR v1 at a small size that keeps every structural
feature (docs/model-spec.md): SAM with windowed and global blocks and rel-pos tables, the neck and
two stride-2 convs, CLIP fed by SAM's features, the linear projector, the newline/separator
layout, a DeepSeek-V2 decoder with a dense first layer and MoE layers with shared experts and
top-k > 1. It reads the `tiny` view (512x512, 64 + 9 image tokens).

About 3 M parameters: small enough that the weights with both AdamW moments (bf16) travel
between the GPU machine's calls (the training state must fit the device tool's carry limit), and
6 MB as bf16 safetensors.
"""
from . import config as cfgmod

DEMO_MODE = "tiny"

SAM = {"width": 96, "layers": 4, "heads": 4, "global_attn_indexes": [1, 3], "downsample_channels": [96, 128],
       "out_chans": 64, "window_size": 14, "mlp_ratio": 4.0}
CLIP = {"width": 128, "layers": 2, "heads": 4, "image_size": 224, "patch_size": 14, "mlp_ratio": 3.7362}
LM = dict(hidden_size=192, intermediate_size=512, moe_intermediate_size=64, num_hidden_layers=4,
          num_attention_heads=4, num_key_value_heads=4, n_routed_experts=6, n_shared_experts=1,
          num_experts_per_tok=2, first_k_dense_replace=1, max_position_embeddings=1024)


def demo_config_dict(vocab_size, bos_id, eos_id):
    """config.json in the released layout (deepseek_vl_v2 style), with the demo widths."""
    d = cfgmod.tiny_config_dict(vocab_size)
    d["_name_or_path"] = "dsocr/dsocr-demo"
    lm = dict(d["language_config"])
    lm.update(LM, vocab_size=vocab_size, bos_token_id=bos_id, eos_token_id=eos_id)
    d["language_config"] = lm
    d.update({k: v for k, v in lm.items() if k in cfgmod.LM_DEFAULTS})
    d["projector_config"] = {"input_dim": CLIP["width"] + SAM["downsample_channels"][1], "model_type": "mlp_projector",
                             "n_embed": LM["hidden_size"], "projector_type": "linear"}
    d["vision_config"]["width"] = {"clip-l-14-224": dict(CLIP), "sam_vit_b": dict(SAM)}
    d["vision_config"]["mlp_ratio"] = CLIP["mlp_ratio"]
    d["dsocr_demo"] = {"mode": DEMO_MODE, "prompt": "<image>\nFree OCR."}
    return d

"""Model pieces: config parsing, official names and shapes, tiny-model shapes, KV cache,
tokenizer structure, preprocessing rules, the n-gram rule."""
import copy
import json
import math
import os

import pytest
import torch
from PIL import Image

from conftest import GOLDENS, crosscheck, record
from dsocr_ref import checkpoint, config, generate, model, preprocess, tokenizer as tokmod
from dsocr_ref.h5 import read_case
from dsocr_ref.paths import official

V1_CONFIG = official("deepseek-ocr/config.json")
V2_CONFIG = official("deepseek-ocr-2/config.json")
V1_INDEX = official("deepseek-ocr/model.safetensors.index.json")
TINY = os.path.join(GOLDENS, "tiny-ckpt")


def released_v1_layout():
    """The released v1 config.json layout (model-spec §1.5): the v2 file's layout with v1's
    vision_config and projector, defaults omitted."""
    with open(V2_CONFIG) as f:
        d = json.load(f)
    with open(V1_CONFIG) as f:
        v1 = json.load(f)
    d["vision_config"] = v1["vision_config"]
    d["projector_config"] = v1["projector_config"]
    d["architectures"] = ["DeepseekOCRForCausalLM"]
    for k in ("rms_norm_eps", "rope_theta", "rope_scaling", "norm_topk_prob", "routed_scaling_factor"):
        assert k not in d
    return d


def test_config_both_layouts_parse_equal():
    resaved = config.load(V1_CONFIG)
    released = config.from_dict(released_v1_layout())
    assert resaved == released
    assert resaved.sam_global_blocks == [2, 5, 8, 11] and resaved.clip_layers == 24
    assert resaved.rope_theta == 10000.0 and resaved.norm_topk_prob is False and resaved.head_dim == 128


def test_config_v2_recognised():
    """DeepSeek-OCR-2 parses as version 2 (tests/test_ocr2.py covers it); v1 stays version 1."""
    assert config.load(V2_CONFIG).version == 2 and config.load(V1_CONFIG).version == 1


def test_full_size_names_shapes_and_count():
    c = config.load(V1_CONFIG)
    m = model.build(c, "meta")
    sd = m.state_dict()
    with open(V1_INDEX) as f:
        keys = set(json.load(f)["weight_map"]) - {"model.vision_model.embeddings.position_ids"}
    assert set(sd) == keys and len(keys) == 2710
    assert sum(v.numel() for v in sd.values()) == 3_336_106_240
    shapes = {
        "model.sam_model.patch_embed.proj.weight": (768, 3, 16, 16), "model.sam_model.pos_embed": (1, 64, 64, 768),
        "model.sam_model.blocks.2.attn.rel_pos_h": (127, 64), "model.sam_model.blocks.3.attn.rel_pos_w": (27, 64),
        "model.sam_model.neck.0.weight": (256, 768, 1, 1), "model.sam_model.net_3.weight": (1024, 512, 3, 3),
        "model.vision_model.embeddings.position_embedding.weight": (257, 1024),
        "model.vision_model.transformer.layers.23.self_attn.qkv_proj.weight": (3072, 1024),
        "model.projector.layers.weight": (1280, 2048), "model.image_newline": (1280,),
        "model.layers.0.mlp.gate_proj.weight": (6848, 1280), "model.layers.11.mlp.experts.63.down_proj.weight": (1280, 896),
        "model.layers.1.mlp.shared_experts.up_proj.weight": (1792, 1280), "model.layers.5.mlp.gate.weight": (64, 1280),
        "lm_head.weight": (129280, 1280),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k


@pytest.fixture(scope="module")
def tiny():
    if not os.path.exists(os.path.join(TINY, "config.json")):
        pytest.skip("tests/goldens/tiny-ckpt missing (run scripts/goldens.sh)")
    m, c = checkpoint.load(TINY)
    return m, c, tokmod.load(TINY)


def test_tiny_checkpoint_layout(tiny):
    m, c, tok = tiny
    files = set(os.listdir(TINY))
    assert {"config.json", "model-00001-of-000001.safetensors", "model.safetensors.index.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json"} <= files
    sd = checkpoint.read_state_dict(TINY)
    assert all(v.dtype == torch.bfloat16 for v in sd.values())
    with open(os.path.join(TINY, "model.safetensors.index.json")) as f:
        idx = json.load(f)
    assert set(idx["weight_map"]) == set(sd) == set(m.state_dict())
    assert idx["metadata"]["total_size"] == sum(v.numel() * 2 for v in sd.values())
    # structural features kept
    assert c.sam_global_blocks and len(c.sam_global_blocks) < c.sam_layers
    assert sd["model.sam_model.blocks.1.attn.rel_pos_h"].shape[0] == 127  # resized at any grid but 64
    assert c.num_experts_per_tok > 1 and c.n_shared_experts and c.first_k_dense_replace == 1
    for v in sd.values():  # never zero or constant
        assert v.float().std() > 0


@torch.no_grad()
def test_tiny_shapes(tiny):
    m, c, tok = tiny
    g = torch.Generator().manual_seed(0)
    for s in (512, 640, 1024):
        px = torch.rand(1, 3, s, s, generator=g) * 2 - 1
        sam = m.model.sam_model(px)
        assert sam.shape == (1, c.sam_downsample_channels[1], s // 64, s // 64)
        clip = m.model.vision_model(sam)
        assert clip.shape == (1, (s // 64) ** 2 + 1, c.clip_width)
    gv = torch.rand(1, 3, 1024, 1024, generator=g)
    tiles = torch.rand(6, 3, 640, 640, generator=g)
    emb = m.vision_embeddings(gv, tiles, (2, 3))
    assert emb.shape == (preprocess.n_image_tokens("gundam", (2, 3), 6), c.n_embed) == (903, c.n_embed)
    # the newline closes every mosaic row, the separator closes the sequence
    nl = m.model.image_newline
    assert torch.equal(emb[20], nl) and torch.equal(emb[30 * 21 - 1], nl) and torch.equal(emb[-1], m.model.view_seperator)
    ids = torch.tensor(tokmod.prompt_ids(tok, "Hello world", 0))
    assert m.logits(ids).shape == (len(ids), c.vocab_size)


@torch.no_grad()
def test_kv_cache_decode_equals_full_forward(tiny):
    m, c, tok = tiny
    ids = torch.tensor(tokmod.prompt_ids(tok, "The quick brown fox jumps over the lazy dog. 1234", 0))
    full = m.logits(ids)
    caches = [dict() for _ in m.model.layers]
    x = m.embed(ids)
    first = m.decode(x[:10], torch.arange(10), kv_caches=caches)
    rest = [m.decode(x[i:i + 1], torch.tensor([i]), kv_caches=caches) for i in range(10, len(ids))]
    inc = torch.cat([first] + rest)
    assert (inc - full).abs().max() < 1e-4 * full.abs().max()


def test_tokenizer_structure(tiny):
    _, c, tok = tiny
    with open(os.path.join(TINY, "tokenizer.json")) as f:
        tj = json.load(f)
    pre = tj["pre_tokenizer"]["pretokenizers"]
    assert [p["type"] for p in pre] == ["Split", "Split", "Split", "ByteLevel"]
    assert all(p["behavior"] == "Isolated" for p in pre[:3])
    assert pre[0]["pattern"]["Regex"] == tokmod.SPLIT_DIGITS and pre[2]["pattern"]["Regex"] == tokmod.SPLIT_MAIN
    assert pre[3]["add_prefix_space"] is False and pre[3]["use_regex"] is False
    with open(os.path.join(TINY, "tokenizer_config.json")) as f:
        tc = json.load(f)
    contents = {v["content"] for v in tc["added_tokens_decoder"].values()}
    official = {t[1] for t in tokmod.official_added_tokens()}
    assert contents == official and len(official) == 830
    for t in ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"):
        assert tok.token_to_id(t) == {"<｜begin▁of▁sentence｜>": 0, "<｜end▁of▁sentence｜>": 1, "<｜▁pad▁｜>": 2}[t]
    for tid, v in tc["added_tokens_decoder"].items():
        assert tok.token_to_id(v["content"]) == int(tid)
    assert max(int(t) for t in tc["added_tokens_decoder"]) < c.vocab_size
    for text in ("Hello  world\n\n\t1234567 深度求索 😀", "<image>\n<|grounding|>Convert the document to markdown."):
        ids = tokmod.encode(tok, text)
        assert tok.decode(ids, skip_special_tokens=False) == text
    # digits split in groups of at most three before BPE
    pieces = tok.pre_tokenizer.pre_tokenize_str("1234567")
    assert [p for p, _ in pieces] == ["123", "456", "7"]
    ids = tokmod.prompt_ids(tok, "<image>\nFree OCR.", 5)
    assert ids[0] == 0 and ids[1:6] == [tok.token_to_id("<image>")] * 5


def test_preprocess_rules():
    for n in (6, 9):
        assert preprocess.official_candidates(n) == preprocess.CANDIDATES[n]
    f = preprocess.find_closest_aspect_ratio
    c9 = preprocess.CANDIDATES[9]
    assert f(1700 / 2200, c9, 1700, 2200, 640) == (2, 3)  # spec example
    assert preprocess.n_image_tokens("gundam", (2, 3), 6) == 903
    # exact tie between (2,1) and (3,1) at aspect 2.5: the later wins only with a large enough area
    assert f(2.5, c9, 1000, 400, 640) == (2, 1)
    assert f(2.5, c9, 1250, 500, 640) == (3, 1)
    assert f(2.5, c9, 2500, 1000, 640) == (4, 2)
    assert f(2.5, preprocess.CANDIDATES[6], 2500, 1000, 640) == (3, 1)
    assert [preprocess.n_image_tokens(m) for m in ("tiny", "small", "base", "large")] == [73, 111, 273, 421]
    img = Image.new("RGB", (600, 500), (10, 200, 30))
    g, t, grid = preprocess.views(img, "gundam")
    assert g.shape == (1, 3, 1024, 1024) and t.shape[0] == 0 and grid == (1, 1)
    # grey pad value: 127 -> (127/255 - 0.5)/0.5
    assert abs(float(g[0, 0, 0, 0]) - (127 / 255 - 0.5) / 0.5) < 1e-7
    g, t, grid = preprocess.views(Image.new("RGB", (1700, 2200), (255, 255, 255)), "gundam")
    assert grid == (2, 3) and t.shape == (6, 3, 640, 640)
    g, _, _ = preprocess.views(Image.new("RGB", (333, 517)), "tiny")
    assert g.shape == (1, 3, 512, 512)


def test_ngram_rule():
    b = generate.banned_ngram_tokens
    assert b([1, 2, 3], 4, 90) == set()
    assert b([5, 6, 7, 5, 6], 3, 90) == {7}
    assert b([5, 6, 7, 5, 6], 3, 90, whitelist=[7]) == set()
    # the window excludes the old occurrence
    assert b([5, 6, 7, 9, 9, 9, 9, 5, 6], 3, 4) == set()
    assert b([1, 1, 1], 2, 90) == {1}


def _case_inputs(case, dt):
    inp = case["inputs"]
    if "global_view" not in inp:
        return None
    t = torch.from_numpy(inp["tiles"]) if "tiles" in inp else torch.zeros(0, 3, 640, 640)
    return torch.from_numpy(inp["global_view"]).to(dt), t.to(dt), tuple(int(v) for v in inp["grid"])


@torch.no_grad()
def test_model_goldens_against_fp64_recompute(tiny):
    """The fp32 model goldens against the same model computed in float64: logits within a small
    fraction of the contract's tolerance, greedy tokens identical with margins that agree, i.e.
    the committed ids do not hang on fp32 rounding (nor on another CPU's summation order)."""
    m, c, _ = tiny
    m64 = copy.deepcopy(m).double()
    for name in ("model_logits_text", "model_logits_image_tiny"):
        case = read_case(os.path.join(GOLDENS, "model", name + ".h5"))
        views = _case_inputs(case, torch.float64)
        emb = m64.vision_embeddings(*views) if views else None
        ids = torch.from_numpy(case["inputs"]["input_ids"])
        lg = m64.logits(ids, emb, int(case["attrs"]["image_token_id"]), {})
        ref = torch.from_numpy(case["outputs"]["logits"]).double()
        assert torch.all((lg - ref).abs() <= 0.1 * (1e-4 + 1e-3 * ref.abs())), name
        crosscheck("model_logits (committed fp32)", "same model in fp64", lg, ref, 1e-5)
    for name in ("model_generate_image_tiny_ngram3", "model_generate_image_base_ngram30"):
        case = read_case(os.path.join(GOLDENS, "model", name + ".h5"))
        a = case["attrs"]
        emb = m64.vision_embeddings(*_case_inputs(case, torch.float64))
        st = {}
        out = generate.generate(m64, torch.from_numpy(case["inputs"]["input_ids"]), emb, int(a["image_token_id"]),
                                int(a["max_new_tokens"]), int(a["ngram_size"]), int(a["ngram_window"]),
                                [int(x) for x in a["ngram_whitelist"]], c.eos_token_id, st)
        ref = case["outputs"]["tokens"]
        assert out == ref.tolist(), name
        crosscheck("model_generate tokens (committed)", "same model in fp64 (exact)", torch.tensor(out),
                   torch.from_numpy(ref), 0)
        margin = float(a["min_logit_margin"])
        assert abs(st["min_margin"] - margin) < 0.01 * margin, (name, st["min_margin"], margin)
        record(f"{name} min_logit_margin {margin:.3g}", "same model in fp64", abs(st["min_margin"] - margin),
               abs(st["min_margin"] - margin) / margin, 0.01)

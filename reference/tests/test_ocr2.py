"""DeepSeek-OCR-2 in the reference: config detection, official names and counts, the encoder's mixed mask
(against a dense-mask attention), an independent Qwen2 layer, view layout and token counts, preprocessing,
checkpoint round trip, the golden writer, and v1 left as it was."""
import json
import math
import os
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import REPO, crosscheck
from dsocr_ref import checkpoint, config, goldens_ocr2, model, ocr2, ops, preprocess
from dsocr_ref.h5 import read_case
from dsocr_ref.paths import official

V1_CONFIG = official("deepseek-ocr/config.json")
V2_CONFIG = official("deepseek-ocr-2/config.json")


def _v2_index():
    """The official v2 weight index (tests/data/official, copied from the released checkpoint)."""
    return official("deepseek-ocr-2/model.safetensors.index.json")


def tiny_v2(seed=3):
    c = config.from_dict(config.tiny_config_dict_v2(256))
    m = model.build(c)
    checkpoint.random_init(m, seed)
    return m.eval(), c


# ------------------------------------------------------------------ config
def test_config_v2_official():
    c = config.load(V2_CONFIG)
    v1 = config.load(V1_CONFIG)
    assert c.version == 2 and v1.version == 1
    dims = (c.qwen2_layers, c.qwen2_hidden, c.qwen2_heads, c.qwen2_kv_heads, c.qwen2_intermediate)
    assert dims == (24, 896, 14, 2, 4864)
    assert c.qwen2_head_dim == 64 and c.qwen2_rope_theta == 1e6 and c.qwen2_rms_eps == 1e-6
    assert c.sam_downsample_channels == [512, 896]  # the config's [512, 1024] is stale (spec §1.1)
    assert (c.projector_input_dim, c.n_embed) == (896, 1280)
    assert (c.qwen2_query_tile, c.qwen2_query_global) == (144, 256)
    lm = [k for k in config.LM_DEFAULTS if hasattr(c, k)]
    assert {k: getattr(c, k) for k in lm} == {k: getattr(v1, k) for k in lm}  # the same LM
    assert v1.projector_input_dim == 2048 and v1.sam_downsample_channels == [512, 1024]


def test_config_v2_detection_and_tiny():
    d = config.tiny_config_dict_v2(256)
    assert config.is_v2(d) and not config.is_v2(config.tiny_config_dict(256))
    c = config.from_dict(d)
    assert c.version == 2 and c.qwen2_heads != c.qwen2_kv_heads and c.qwen2_layers > 1
    assert c.sam_downsample_channels == [32, c.qwen2_hidden] == [32, 48]  # stale 64 ignored
    for key in ("architectures", "model_name"):  # any one marker is enough
        e = json.loads(json.dumps(d))
        del e["vision_config"]["width"]["qwen2-0-5b"]
        if key == "architectures":
            e["vision_config"]["model_name"] = "x"
        else:
            e["architectures"] = ["X"]
        assert config.is_v2(e)


def test_full_size_v2_names_shapes_and_count():
    m = model.build(config.load(V2_CONFIG), "meta")
    assert isinstance(m, ocr2.DeepseekOCR2)
    sd = m.state_dict()
    with open(_v2_index()) as f:
        keys = set(json.load(f)["weight_map"])
    assert set(sd) == keys and len(keys) == 2707
    count = lambda p: sum(v.numel() for k, v in sd.items() if k.startswith(p))  # noqa: E731
    assert count("") == 3_389_119_360
    assert (count("model.sam_model."), count("model.qwen2_model."), count("model.projector.")) == \
        (94_979_328, 358_256_512, 1_148_160)
    q, ly = "model.qwen2_model.", "model.qwen2_model.model.model.layers."
    shapes = {
        "model.sam_model.net_3.weight": (896, 512, 3, 3), "model.projector.layers.weight": (1280, 896),
        ly + "23.self_attn.q_proj.weight": (896, 896), ly + "0.self_attn.q_proj.bias": (896,),
        ly + "0.self_attn.k_proj.weight": (128, 896), ly + "0.self_attn.v_proj.bias": (128,),
        ly + "0.self_attn.o_proj.weight": (896, 896), ly + "5.mlp.gate_proj.weight": (4864, 896),
        ly + "5.mlp.down_proj.weight": (896, 4864), q + "model.model.norm.weight": (896,),
        q + "query_768.weight": (144, 896), q + "query_1024.weight": (256, 896), "model.view_seperator": (1280,),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    assert "model.image_newline" not in sd and not any(k.startswith("model.vision_model.") for k in sd)


# ------------------------------------------------------------------ the mixed mask
def _dense_attention(q, k, v, mask):
    """softmax(q kᵀ/√D + mask) v with GQA by repeat_kv (transformers), torch's own softmax."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask
    return torch.softmax(s, -1) @ v


@pytest.mark.parametrize("n", [1, 5, 12])
def test_mask_blocks_and_sdpa_causal_prefix(n):
    m = ocr2.encoder_mask(n)
    allowed = m == 0
    assert allowed[:n, :n].all() and not allowed[:n, n:].any() and allowed[n:, :n].all()
    assert torch.equal(allowed[n:, n:], torch.ones(n, n, dtype=torch.bool).tril())
    # == "causal where keys j < N are visible to every query"
    i, j = torch.arange(2 * n)[:, None], torch.arange(2 * n)[None, :]
    assert torch.equal(allowed, (j <= i) | (j < n))
    g = torch.Generator().manual_seed(n)
    q = torch.randn(2, 6, 2 * n, 8, generator=g, dtype=torch.float64)
    k = torch.randn(2, 2, 2 * n, 8, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, 2 * n, 8, generator=g, dtype=torch.float64)
    got = ops.sdpa(q, k, v, causal=True, causal_prefix=n)
    for fill in (float("-inf"), torch.finfo(torch.float64).min, -1e9):  # ours, HF's finfo.min, MLX's -1e9
        ref = _dense_attention(q, k, v, ocr2.encoder_mask(n, torch.float64, fill))
        crosscheck("sdpa causal_prefix=N", "dense additive mask M=[[1,0],[1,tril]]", got, ref, 1e-12)


@torch.no_grad()
def test_encoder_information_flow():
    """Image outputs ignore every query; query i ignores the queries after it."""
    m, c = tiny_v2()
    layers = m.model.qwen2_model
    n = 12
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2 * n, c.qwen2_hidden, generator=g)
    y = layers.run_layers(x, n)
    x2 = x.clone()
    x2[:, n + 5:] += torch.randn(1, n - 5, c.qwen2_hidden, generator=g)
    y2 = layers.run_layers(x2, n)
    assert torch.equal(y[:, :n + 5], y2[:, :n + 5]) and not torch.allclose(y[:, n + 5:], y2[:, n + 5:])
    x3 = x.clone()
    x3[:, 3] += 1.0  # an image token reaches everything
    assert not torch.allclose(layers.run_layers(x3, n)[:, n], y[:, n])


# ------------------------------------------------------------------ Qwen2 layer against an independent formulation
def _hf_qwen2_layer(x, w, heads, kv_heads, theta, eps, n):
    """transformers Qwen2DecoderLayer (eager) with the official 4-D mask, written with torch.nn.functional."""
    def rms(h, wt):
        return wt * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps))
    b, t, dim = x.shape
    hd = dim // heads
    h = rms(x, w["input_layernorm.weight"])
    q = F.linear(h, w["self_attn.q_proj.weight"], w["self_attn.q_proj.bias"]).view(b, t, heads, hd).transpose(1, 2)
    k = F.linear(h, w["self_attn.k_proj.weight"], w["self_attn.k_proj.bias"]).view(b, t, kv_heads, hd).transpose(1, 2)
    v = F.linear(h, w["self_attn.v_proj.weight"], w["self_attn.v_proj.bias"]).view(b, t, kv_heads, hd).transpose(1, 2)
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    rot = lambda z: torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1)  # noqa: E731
    q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
    o = _dense_attention(q, k, v, ocr2.encoder_mask(n, torch.float64, torch.finfo(torch.float64).min))
    x = x + F.linear(o.transpose(1, 2).reshape(b, t, dim), w["self_attn.o_proj.weight"])
    h = rms(x, w["post_attention_layernorm.weight"])
    up = F.silu(F.linear(h, w["mlp.gate_proj.weight"])) * F.linear(h, w["mlp.up_proj.weight"])
    return x + F.linear(up, w["mlp.down_proj.weight"])


@torch.no_grad()
def test_qwen2_layer_against_independent_formulation():
    m, c = tiny_v2()
    layer = m.model.qwen2_model.model.model.layers[1].double()
    n = 9
    x = torch.randn(2, 2 * n, c.qwen2_hidden, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = layer(x, torch.arange(2 * n), n)
    ref = _hf_qwen2_layer(x, {k: v for k, v in layer.state_dict().items()}, c.qwen2_heads, c.qwen2_kv_heads,
                          c.qwen2_rope_theta, c.qwen2_rms_eps, n)
    # bound: our RoPE angles are fp32 (as transformers computes them), the formulation's float64
    crosscheck("ocr2 Qwen2EncoderLayer", "F.* Qwen2 layer + dense mask (fp64 angles)", got, ref, 1e-5)


# ------------------------------------------------------------------ queries, views, token counts
@torch.no_grad()
def test_encoder_queries_and_outputs():
    m, c = tiny_v2()
    enc = m.model.qwen2_model
    g = torch.Generator().manual_seed(2)
    for s, table in ((12, enc.query_768), (16, enc.query_1024)):
        feats = torch.randn(2, c.qwen2_hidden, s, s, generator=g)
        taps = {}
        y = enc(feats, taps)
        assert y.shape == (2, s * s, c.qwen2_hidden)
        x0 = taps["inputs_embeds"]
        assert torch.equal(x0[0, :s * s], feats[0].flatten(1).t()) and torch.equal(x0[1, s * s:], table.weight)
        assert torch.equal(y, enc.run_layers(x0, s * s)[:, s * s:])
    with pytest.raises(ValueError):
        enc(torch.randn(1, c.qwen2_hidden, 10, 10))


class _StubSam(torch.nn.Module):
    """Stands in for SAM (1024 views are slow on CPU): a deterministic map [n, D, S/64, S/64] from the pixels."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def forward(self, px, taps=None):
        pooled = F.avg_pool2d(px, 64)  # [n,3,S/64,S/64]
        return pooled.repeat(1, self.d // 3 + 1, 1, 1)[:, :self.d] * torch.linspace(0.5, 2, self.d)[None, :, None, None]


@torch.no_grad()
def test_v2_view_layout_and_token_counts():
    m, c = tiny_v2()
    m.model.sam_model = _StubSam(c.qwen2_hidden)
    g = torch.Generator().manual_seed(4)
    gv = torch.rand(1, 3, 1024, 1024, generator=g)
    tiles = torch.rand(6, 3, 768, 768, generator=g)
    emb = m.vision_embeddings(gv, tiles, (2, 3))
    assert emb.shape == (preprocess.n_image_tokens_v2(6), c.n_embed) == (1121, c.n_embed)
    for k in (0, 4):  # tiles one after another, 144 each, in the order given
        assert torch.equal(emb[144 * k:144 * (k + 1)], m.encode_view(tiles[k:k + 1])[0])
    assert torch.equal(emb[864:1120], m.encode_view(gv)[0])
    assert torch.equal(emb[-1], m.model.view_seperator) and not hasattr(m.model, "image_newline")
    assert m.vision_embeddings(gv).shape[0] == 257
    with pytest.raises(ValueError):
        m.vision_embeddings(gv, tiles, (3, 3))


def test_preprocess_v2_grids_and_tokens():
    cases = {  # (W, H): grid (cols, rows)
        (700, 700): (1, 1), (768, 500): (1, 1), (1700, 2200): (2, 3), (900, 1200): (2, 3), (800, 600): (3, 2),
        (1000, 400): (2, 1),  # exact tie (2,1)/(3,1): area 4e5 < 0.5·768²·3, the earlier stays
        (2500, 1000): (3, 1),  # same tie, area large enough: the later wins
        (769, 3000): (1, 4), (4000, 500): (6, 1), (1600, 1600): (2, 2),
    }
    for (w, h), grid in cases.items():
        assert preprocess.grid_v2(w, h) == grid, (w, h)
    for r in [x / 10 for x in range(1, 80)]:  # never 1 tile, never more than 6
        cols, rows = preprocess.grid_v2(int(2000 * r), 2000)
        assert 2 <= cols * rows <= 6
    assert [preprocess.n_image_tokens_v2(k) for k in (0, 2, 3, 4, 5, 6)] == [257, 545, 689, 833, 977, 1121]
    with pytest.raises(ValueError):
        preprocess.n_image_tokens_v2(1)
    g, t, grid = preprocess.views_v2(Image.new("RGB", (1700, 2200), (255, 255, 255)))
    assert grid == (2, 3) and g.shape == (1, 3, 1024, 1024) and t.shape == (6, 3, 768, 768)
    assert preprocess.n_image_tokens_v2(t.shape[0]) == 1121  # spec §3 example
    g, t, grid = preprocess.views_v2(Image.new("RGB", (640, 480), (10, 20, 30)))
    assert grid == (1, 1) and t.shape == (0, 3, 768, 768)
    assert abs(float(g[0, 0, 0, 0]) - (127 / 255 - 0.5) / 0.5) < 1e-7  # grey pad


# ------------------------------------------------------------------ checkpoint
def _patterns(keys):
    return {re.sub(r"\.\d+\.", ".N.", k) for k in keys}


def test_checkpoint_v2_round_trip(tmp_path):
    d = str(tmp_path / "ckpt")
    m, c, tok = checkpoint.write_tiny_v2(d)
    m2, c2 = checkpoint.load(d)
    assert isinstance(m2, ocr2.DeepseekOCR2) and c2 == c and c2.version == 2
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert set(sd) == set(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    stored = checkpoint.read_state_dict(d)
    assert all(v.dtype == torch.bfloat16 for v in stored.values()) and set(stored) == set(sd)
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        assert set(json.load(f)["weight_map"]) == set(sd)
    with open(_v2_index()) as f:  # the official v2 name layout, up to layer/expert numbers
        assert _patterns(sd) == _patterns(json.load(f)["weight_map"])
    q = "model.qwen2_model."
    assert stored[q + "query_768.weight"].shape == (144, 48) and stored[q + "query_1024.weight"].shape == (256, 48)
    assert float(stored[q + "query_1024.weight"].float().std()) > 0.5  # N(0,1), as embeddings
    for v in stored.values():
        assert v.float().std() > 0


# ------------------------------------------------------------------ golden writer
WRITTEN = ["qwen2_encoder_layer_tiny_global_l1", "qwen2_encoder_layer_real_heads_tile", "qwen2_encoder_layer_full_dims",
           "qwen2_encoder_tiny_global",
           "vision_encoder_ocr2_global_only", "model_logits_ocr2_image"]
DATASETS = {  # op -> (inputs, outputs)
    "qwen2_encoder_layer": ({"x", "positions"}, {"y"}), "qwen2_encoder": ({"sam_features"}, {"y"}),
    "vision_encoder": ({"global_view", "grid"}, {"embeds"}),
    "model_logits": ({"input_ids", "global_view", "grid"}, {"logits"}),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("goldens_ocr2"))
    paths = goldens_ocr2.write_all(out, WRITTEN, log=lambda s: None)
    assert [os.path.basename(p)[:-3] for p in paths] == WRITTEN
    return out, {os.path.basename(p)[:-3]: read_case(p) for p in paths}


def test_golden_files_follow_contract(written):
    out, cases = written
    for name, cs in cases.items():
        a = cs["attrs"]
        assert a["format"] == "dsocr-golden" and int(a["version"]) == 1, name
        ins, outs = DATASETS[a["op"]]
        assert set(cs["inputs"]) == ins and set(cs["outputs"]) == outs, name
        # float16 only for the full-dimension layer's exactly representable ternary matrices
        half = name == "qwen2_encoder_layer_full_dims"
        assert all(v.dtype == ("float16" if half and v.ndim == 2 else "float32") for v in cs["weights"].values()), name
        assert all(v.dtype in ("float32", "int64", "uint8") for v in cs["inputs"].values())
    lay = cases["qwen2_encoder_layer_tiny_global_l1"]
    assert int(lay["attrs"]["causal_prefix"]) * 2 == lay["inputs"]["x"].shape[1] == 512
    assert lay["inputs"]["positions"].tolist() == list(range(512))
    real = cases["qwen2_encoder_layer_real_heads_tile"]
    assert (int(real["attrs"]["num_heads"]), real["weights"]["self_attn.k_proj.weight"].shape) == (14, (128, 896))
    assert int(real["attrs"]["causal_prefix"]) == 144 and float(real["attrs"]["rope_theta"]) == 1e6
    full = cases["qwen2_encoder_layer_full_dims"]
    fw = full["weights"]
    assert fw["mlp.gate_proj.weight"].shape == (4864, 896) and fw["self_attn.v_proj.weight"].shape == (128, 896)
    assert int(full["attrs"]["num_heads"]) == 14 and int(full["attrs"]["causal_prefix"]) * 2 == 72
    vals = np.unique(fw["mlp.up_proj.weight"])
    assert len(vals) == 3 and vals[1] == 0 and vals[0] == -vals[2]  # sparse ternary
    assert 0.1 < float((fw["mlp.up_proj.weight"] != 0).mean()) < 0.15
    assert not np.signbit(fw["mlp.up_proj.weight"][fw["mlp.up_proj.weight"] == 0]).any()  # +0 only: compresses
    assert os.path.getsize(os.path.join(out, "model", "qwen2_encoder_layer_full_dims.h5")) < 3 * 1024 * 1024
    enc = cases["qwen2_encoder_tiny_global"]
    assert {"query_768.weight", "query_1024.weight", "model.model.norm.weight"} <= set(enc["weights"])
    assert enc["outputs"]["y"].shape == (1, 256, 48) and "layers.2" in enc["taps"]
    vis = cases["vision_encoder_ocr2_global_only"]
    assert vis["outputs"]["embeds"].shape == (257, 128) and "tiles" not in vis["inputs"]
    assert not any(k.startswith(("vision_model.", "image_newline")) for k in vis["weights"])
    assert int(vis["attrs"]["qwen2_heads"]) == 6


@torch.no_grad()
def test_golden_values_recompute(written):
    out, cases = written
    lay = cases["qwen2_encoder_layer_real_heads_tile"]
    a = lay["attrs"]
    c = config.Config(version=2, qwen2_heads=int(a["num_heads"]), qwen2_intermediate=256)
    layer = ocr2.Qwen2EncoderLayer(c)
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in lay["weights"].items()})
    x = torch.from_numpy(lay["inputs"]["x"])
    y = layer(x, torch.from_numpy(lay["inputs"]["positions"]), int(a["causal_prefix"]))
    ref = torch.from_numpy(lay["outputs"]["y"])
    assert torch.all((y - ref).abs() <= 1e-4 + 1e-3 * ref.abs())  # contract tolerance, fp32 vs fp64 golden
    full = cases["qwen2_encoder_layer_full_dims"]
    layer = ocr2.Qwen2EncoderLayer(config.Config(version=2))
    layer.load_state_dict({k: torch.from_numpy(v.astype("float32")) for k, v in full["weights"].items()})
    y = layer(torch.from_numpy(full["inputs"]["x"]), torch.from_numpy(full["inputs"]["positions"]), 36)
    ref = torch.from_numpy(full["outputs"]["y"])
    assert torch.all((y - ref).abs() <= 1e-4 + 1e-3 * ref.abs()) and float(ref.std()) > 0.5
    lg = cases["model_logits_ocr2_image"]
    ckpt = os.path.normpath(os.path.join(out, "model", lg["attrs"]["checkpoint"]))
    m, c2 = checkpoint.load(ckpt)
    assert c2.version == 2
    enc = m.model.qwen2_model(torch.from_numpy(cases["qwen2_encoder_tiny_global"]["inputs"]["sam_features"]))
    assert torch.equal(enc, torch.from_numpy(cases["qwen2_encoder_tiny_global"]["outputs"]["y"]))
    ids = torch.from_numpy(lg["inputs"]["input_ids"])
    emb = torch.from_numpy(lg["taps"]["image_embeds"])
    assert int((ids == int(lg["attrs"]["image_token_id"])).sum()) == emb.shape[0] == 257
    logits = m.logits(ids, emb, int(lg["attrs"]["image_token_id"]))
    assert torch.equal(logits, torch.from_numpy(lg["outputs"]["logits"]))


def test_committed_cases_are_the_listed_ones():
    """goldens.main regenerates exactly COMMITTED (test_goldens checks the values)."""
    model_dir = os.path.join(REPO, "tests", "goldens", "model")
    names = {n[:-3] for n in os.listdir(model_dir) if n.endswith(".h5")}
    v2 = names & {name for name, _ in goldens_ocr2.CASES}
    assert v2 == set(goldens_ocr2.COMMITTED)
    assert set(goldens_ocr2.COMMITTED) <= {name for name, _ in goldens_ocr2.CASES}


# ------------------------------------------------------------------ v1 unchanged
def test_v1_paths_unchanged():
    c = config.from_dict(config.tiny_config_dict(256))
    assert c.version == 1 and type(model.build(c, "meta")) is model.DeepseekOCR
    full = model.build(config.load(V1_CONFIG), "meta")
    assert type(full) is model.DeepseekOCR and len(full.state_dict()) == 2710
    g, t, grid = preprocess.views(Image.new("RGB", (1700, 2200), (255, 255, 255)), "gundam")
    assert grid == (2, 3) and t.shape == (6, 3, 640, 640) and preprocess.n_image_tokens("gundam", grid, 6) == 903

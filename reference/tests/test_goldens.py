"""The committed goldens follow the contract, and regenerating them reproduces them: same files,
attributes and shapes; op values within 1e-5 relative; model values within the contract's
tolerances; integers (token ids, expert ids, grids, pixels) identical; checkpoint identical."""
import glob
import json
import os

import h5py
import numpy as np
import pytest

from conftest import GOLDENS
from dsocr_ref import checkpoint, goldens
from dsocr_ref.h5 import read_case

OPS = {  # op -> (required inputs, required outputs)
    "linear": (["x"], ["y"]), "conv2d": (["x"], ["y"]), "layer_norm": (["x"], ["y"]),
    "layer_norm_2d": (["x"], ["y"]), "rms_norm": (["x"], ["y"]), "activation": (["x"], ["y"]),
    "softmax": (["x"], ["y"]), "sdpa": (["q", "k", "v"], ["out"]), "unfold": (["x"], ["y"]),
    "resize_bicubic_aa": (["x"], ["y"]), "resize_linear": (["x"], ["y"]), "rope": (["x", "positions"], ["y"]),
    "moe": (["x"], ["y"]), "sam_block": (["x"], ["y"]), "sam_encoder": (["pixels"], ["y"]),
    "clip_encoder": (["sam_features"], ["y"]), "vision_encoder": (["global_view", "grid"], ["embeds"]),
    "decoder_layer": (["x", "positions"], ["y"]), "model_logits": (["input_ids"], ["logits"]),
    "image_preprocess": (["rgb"], ["global_view", "tiles", "grid"]), "tokenize": (["text"], ["ids"]),
    "model_generate": (["input_ids"], ["tokens"]),
}
PARAMS = {
    "conv2d": ["stride", "padding"], "layer_norm": ["eps"], "layer_norm_2d": ["eps"], "rms_norm": ["eps"],
    "activation": ["kind"], "sdpa": ["scale", "causal"], "unfold": ["kernel", "stride", "padding"],
    "resize_bicubic_aa": ["out_h", "out_w"], "resize_linear": ["out_len"], "rope": ["theta"],
    "moe": ["top_k", "norm_topk_prob", "routed_scaling_factor"], "sam_block": ["num_heads", "window_size"],
    "decoder_layer": ["layer_idx"], "image_preprocess": ["mode", "max_tiles"], "tokenize": ["checkpoint"],
    "model_logits": ["checkpoint"], "model_generate": ["checkpoint", "max_new_tokens", "ngram_size", "ngram_window"],
}
COMMITTED = sorted(glob.glob(os.path.join(GOLDENS, "*", "*.h5")))


def test_goldens_present_and_small():
    assert len(COMMITTED) > 90
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(GOLDENS, "**", "*"), recursive=True)
                if os.path.isfile(p))
    assert total < 30 * 1024 * 1024, total


@pytest.mark.parametrize("path", COMMITTED, ids=[os.path.relpath(p, GOLDENS) for p in COMMITTED])
def test_contract(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "dsocr-golden" and int(f.attrs["version"]) == 1
        op = f.attrs["op"]
        assert op in OPS, op
        for grp in f:
            assert grp in ("inputs", "weights", "outputs", "taps"), grp
            for name, ds in f[grp].items():
                assert isinstance(ds, h5py.Dataset)
                if grp == "weights":
                    assert ds.dtype == np.float32, (grp, name, ds.dtype)
                elif grp == "inputs":
                    assert ds.dtype in (np.float32, np.int32, np.int64, np.uint8), (name, ds.dtype)
                else:
                    assert ds.dtype in (np.float32, np.int32, np.int64), (name, ds.dtype)
        ins, outs = OPS[op]
        for n in ins:
            assert n in f["inputs"], n
        for n in outs:
            assert n in f["outputs"], n
        for p in PARAMS.get(op, []):
            assert p in f.attrs, p
        if "checkpoint" in f.attrs:
            ck = os.path.join(os.path.dirname(path), f.attrs["checkpoint"])
            assert os.path.exists(os.path.join(ck, "config.json")), ck
        for k in ("image_file",):
            if k in f.attrs:
                assert os.path.exists(os.path.join(os.path.dirname(path), f.attrs[k]))


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("goldens"))
    assert goldens.main(["--out", out]) == 0
    return out


def _close(a, b, rtol, atol):
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.all((a == b) | (np.abs(a - b) <= atol + rtol * np.abs(b)))


def test_regeneration_reproduces_committed(regenerated):
    new = sorted(glob.glob(os.path.join(regenerated, "*", "*.h5")))
    rel = lambda ps, root: [os.path.relpath(p, root) for p in ps]
    assert rel(new, regenerated) == rel(COMMITTED, GOLDENS)
    worst = {}
    for p_old in COMMITTED:
        r = os.path.relpath(p_old, GOLDENS)
        a, b = read_case(p_old), read_case(os.path.join(regenerated, r))
        ka = {k: v for k, v in a["attrs"].items() if k != "source"}
        kb = {k: v for k, v in b["attrs"].items() if k != "source"}
        assert ka.keys() == kb.keys(), r
        for k in ka:
            if k == "min_logit_margin":
                continue
            assert np.array_equal(np.asarray(ka[k]), np.asarray(kb[k])), (r, k)
        is_op = r.startswith("ops" + os.sep)
        rtol, atol = (1e-5, 1e-6) if is_op else (1e-3, 1e-4)
        for g in ("inputs", "weights", "outputs", "taps"):
            assert a[g].keys() == b[g].keys(), (r, g)
            for n in a[g]:
                x, y = a[g][n], b[g][n]
                assert x.shape == y.shape and x.dtype == y.dtype, (r, g, n)
                if x.dtype.kind == "f":
                    assert _close(y, x, rtol, atol), (r, g, n)
                    fin = np.isfinite(x)
                    d = float(np.max(np.abs(y[fin].astype(np.float64) - x[fin]), initial=0))
                    worst[r] = max(worst.get(r, 0.0), d)
                else:
                    assert np.array_equal(x, y), (r, g, n)
    print("max |regenerated - committed| per file:", max(worst.values()))


def test_regenerated_checkpoint_identical(regenerated):
    a = checkpoint.read_state_dict(os.path.join(GOLDENS, "tiny-ckpt"))
    b = checkpoint.read_state_dict(os.path.join(regenerated, "tiny-ckpt"))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].equal(b[k]), k
    for fn in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
               "model.safetensors.index.json"):
        with open(os.path.join(GOLDENS, "tiny-ckpt", fn), encoding="utf-8") as f1, \
                open(os.path.join(regenerated, "tiny-ckpt", fn), encoding="utf-8") as f2:
            assert json.load(f1) == json.load(f2), fn
    from PIL import Image
    for p in glob.glob(os.path.join(GOLDENS, "images", "*")):
        q = os.path.join(regenerated, "images", os.path.basename(p))
        assert np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(q))), p

"""The committed goldens follow the contract, and regenerating them reproduces them: same files,
attributes and shapes; op values within 1e-5 relative; model values within the contract's
tolerances; integers (token ids, expert ids, grids, pixels) identical; checkpoint identical."""
import glob
import json
import os

import h5py
import numpy as np
import pytest

from conftest import GOLDENS, record
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
    "qwen2_encoder_layer": (["x", "positions"], ["y"]), "qwen2_encoder": (["sam_features"], ["y"]),
}
PARAMS = {
    "conv2d": ["stride", "padding"], "layer_norm": ["eps"], "layer_norm_2d": ["eps"], "rms_norm": ["eps"],
    "activation": ["kind"], "sdpa": ["scale", "causal"], "unfold": ["kernel", "stride", "padding"],
    "resize_bicubic_aa": ["out_h", "out_w"], "resize_linear": ["out_len"], "rope": ["theta"],
    "moe": ["top_k", "norm_topk_prob", "routed_scaling_factor"], "sam_block": ["num_heads", "window_size"],
    "decoder_layer": ["layer_idx"], "image_preprocess": ["mode", "max_tiles"], "tokenize": ["checkpoint"],
    "model_logits": ["checkpoint"], "model_generate": ["checkpoint", "max_new_tokens", "ngram_size", "ngram_window"],
    "qwen2_encoder_layer": ["layer_idx", "num_heads", "rope_theta", "eps", "causal_prefix"],
    "qwen2_encoder": ["num_heads", "rope_theta", "eps"],
}
COMMITTED = sorted(glob.glob(os.path.join(GOLDENS, "*", "*.h5")))


def test_goldens_present_and_small():
    assert len(COMMITTED) > 90
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(GOLDENS, "**", "*"), recursive=True)
                if os.path.isfile(p))
    assert total < 40 * 1024 * 1024, total  # v1 and v2 (DeepSeek-OCR-2: 1024 + 6 x 768 pixel views)


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
                if grp == "weights":  # float16 only where every value is exact in half (§6.5)
                    assert ds.dtype == np.float32 or (ds.dtype == np.float16 and ds.ndim == 2
                                                      and "full_dims" in path), (grp, name, ds.dtype)
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


# the bounds: op cases within 1e-5 relative (no absolute slack); model cases within the
# contract's tolerances (|d| <= 1e-4 + 1e-3 |ref| per element, and rel_l2 <= 1e-3 per array)
OP_RTOL = 1e-5
MODEL_ATOL, MODEL_RTOL, MODEL_REL_L2 = 1e-4, 1e-3, 1e-3


def _close(new, ref, rtol, atol):
    """|new - ref| <= atol + rtol |ref| everywhere; equal non-finite values (e.g. -inf inputs) match."""
    a, b = new.astype(np.float64), ref.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.all((a == b) | (np.abs(a - b) <= atol + rtol * np.abs(b))))


def _diffs(new, ref):
    """(max |d|, max |d|/|ref| over ref != 0, rel_l2) over the finite elements of ref."""
    fin = np.isfinite(ref)
    a, b = new[fin].astype(np.float64), ref[fin].astype(np.float64)
    d = np.abs(a - b)
    nz = b != 0
    max_rel = float(np.max(d[nz] / np.abs(b[nz]), initial=0))
    nb = float(np.linalg.norm(b))
    rel_l2 = float(np.linalg.norm(d)) / nb if nb > 0 else float(np.linalg.norm(d))
    return float(np.max(d, initial=0)), max_rel, rel_l2


def _all_files(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                  if os.path.isfile(p))


def test_regeneration_same_file_list(regenerated):
    assert _all_files(regenerated) == _all_files(GOLDENS)


def test_regeneration_reproduces_committed(regenerated):
    new = sorted(glob.glob(os.path.join(regenerated, "*", "*.h5")))
    rel = lambda ps, root: [os.path.relpath(p, root) for p in ps]
    assert rel(new, regenerated) == rel(COMMITTED, GOLDENS)
    stats = {"ops": [0, 0, 0.0, 0.0, 0.0], "model": [0, 0, 0.0, 0.0, 0.0]}  # files, identical, abs, rel, l2
    for p_old in COMMITTED:
        r = os.path.relpath(p_old, GOLDENS)
        a, b = read_case(p_old), read_case(os.path.join(regenerated, r))
        is_op = r.startswith("ops" + os.sep)
        st = stats["ops" if is_op else "model"]
        st[0] += 1
        identical = True
        ka = {k: v for k, v in a["attrs"].items() if k != "source"}
        kb = {k: v for k, v in b["attrs"].items() if k != "source"}
        assert ka.keys() == kb.keys(), r
        for k in ka:
            if k == "min_logit_margin":  # a float measured on fp32 logits: model tolerance
                assert _close(np.asarray(kb[k]), np.asarray(ka[k]), MODEL_RTOL, MODEL_ATOL), (r, k, ka[k], kb[k])
                identical &= bool(ka[k] == kb[k])
                continue
            assert np.array_equal(np.asarray(ka[k]), np.asarray(kb[k])), (r, k)
        for g in ("inputs", "weights", "outputs", "taps"):
            assert a[g].keys() == b[g].keys(), (r, g)
            for n in a[g]:
                x, y = a[g][n], b[g][n]
                assert x.shape == y.shape and x.dtype == y.dtype, (r, g, n)
                if x.dtype.kind == "f":
                    d_abs, d_rel, d_l2 = _diffs(y, x)
                    if is_op:
                        assert _close(y, x, OP_RTOL, 0.0), (r, g, n, d_abs, d_rel)
                    else:
                        assert _close(y, x, MODEL_RTOL, MODEL_ATOL), (r, g, n, d_abs, d_rel)
                        assert d_l2 <= MODEL_REL_L2, (r, g, n, d_l2)
                    st[2], st[3], st[4] = max(st[2], d_abs), max(st[3], d_rel), max(st[4], d_l2)
                    identical &= bool(np.array_equal(x, y, equal_nan=True))
                else:
                    assert np.array_equal(x, y), (r, g, n)
        st[1] += identical
    for kind, bound in (("ops", OP_RTOL), ("model", MODEL_RTOL)):
        n, same, d_abs, d_rel, d_l2 = stats[kind]
        print(f"{kind}: {n} files, {same} with every value bit-identical; max |d| {d_abs:.3g}, "
              f"max |d|/|ref| {d_rel:.3g}, max rel_l2 {d_l2:.3g}")
        record(f"regenerated {kind}/*.h5 ({same}/{n} bit-identical)", "committed tests/goldens", d_abs, d_rel, bound)


def test_regenerated_checkpoint_identical(regenerated):
    a = checkpoint.read_state_dict(os.path.join(GOLDENS, "tiny-ckpt"))
    b = checkpoint.read_state_dict(os.path.join(regenerated, "tiny-ckpt"))
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].equal(b[k]), k
    record("regenerated tiny-ckpt tensors (bit-exact)", "committed tests/goldens", 0.0, 0.0, 0)
    jsons = sorted(os.path.basename(p) for p in glob.glob(os.path.join(GOLDENS, "tiny-ckpt", "*.json")))
    assert {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "model.safetensors.index.json", "generation_config.json", "processor_config.json"} <= set(jsons)
    for fn in jsons:
        with open(os.path.join(GOLDENS, "tiny-ckpt", fn), encoding="utf-8") as f1, \
                open(os.path.join(regenerated, "tiny-ckpt", fn), encoding="utf-8") as f2:
            assert json.load(f1) == json.load(f2), fn
    from PIL import Image
    imgs = glob.glob(os.path.join(GOLDENS, "images", "*"))
    assert imgs
    for p in imgs:
        q = os.path.join(regenerated, "images", os.path.basename(p))
        with Image.open(p) as i1, Image.open(q) as i2:
            assert i1.mode == i2.mode and i1.size == i2.size, p
            assert np.array_equal(np.asarray(i1), np.asarray(i2)), p
            assert i1.getexif() == i2.getexif(), p  # the EXIF orientation of exif_rot6.jpg
    record("regenerated images (pixels + EXIF, exact)", "committed tests/goldens", 0.0, 0.0, 0)

"""The op case descriptors (parity/cases/*.json, parity/op_cases.h) are where the golden writer takes the cases of
the ops they describe from: goldens_ops.CASES holds exactly each file's golden-tagged cases, in file order, in one
block; each committed golden matches its descriptor (shapes, parameters, tolerance); and writing them again from
the file reproduces the committed files (same attributes, same shapes, values within the 1e-5 relative bound of
test_goldens)."""
import math
import os

import numpy as np
import pytest

from conftest import GOLDENS
from dsocr_ref import goldens_ops
from dsocr_ref.h5 import read_case

GOLDEN = goldens_ops.sdpa_golden_cases()
NAMES = [c["name"] for c in GOLDEN]
# The ops described by parity/cases/<op>.json -> the prefixes of their golden names (write_all's `only`).
OPS = {"sdpa": ("sdpa_",), "layer_norm": ("layer_norm_",), "rms_norm": ("rms_norm_",), "rope": ("rope_",),
       "resize": ("resize_bicubic_aa_", "resize_linear_")}
NORM_GOLDEN = [c for op in ("layer_norm", "rms_norm") for c in goldens_ops.golden_cases(op)]


def _committed_tolerance(attrs):
    default_atol, default_rtol = goldens_ops.CONTRACT_TOLERANCE
    return (float(attrs.get("atol", default_atol)), float(attrs.get("rtol", default_rtol)))


def test_sdpa_cases_come_from_the_file():
    assert len(GOLDEN) >= 11
    sdpa = [(i, name) for i, (name, _) in enumerate(goldens_ops.CASES) if name.startswith("sdpa")]
    assert [n for _, n in sdpa] == NAMES
    # one block of CASES, so that their seeds (1000 + index) are those they had before the file existed
    assert [i for i, _ in sdpa] == list(range(sdpa[0][0], sdpa[0][0] + len(sdpa)))


@pytest.mark.parametrize("op", sorted(OPS))
def test_cases_come_from_the_file_in_one_block(op):
    names = [c["name"] for c in goldens_ops.golden_cases(op)]
    assert names
    block = [(i, n) for i, (n, _) in enumerate(goldens_ops.CASES) if n.startswith(OPS[op])]
    assert [n for _, n in block] == names
    assert [i for i, _ in block] == list(range(block[0][0], block[0][0] + len(block)))


@pytest.mark.parametrize("op", sorted(OPS))
def test_descriptor_file_is_well_formed(op):
    file_op, cases = goldens_ops.load_op_cases(goldens_ops.op_cases_file(op))
    assert file_op == op
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names))
    for c in cases:
        assert c["tags"] and set(c["tags"]) <= goldens_ops.OP_CASE_TAGS, c["name"]
        assert c["atol"] >= 0 and c["rtol"] >= 0, c["name"]
        if "golden" in c["tags"]:
            assert "sweep" not in c, c["name"]


@pytest.mark.parametrize("case", GOLDEN, ids=NAMES)
def test_committed_golden_matches_descriptor(case):
    path = os.path.join(GOLDENS, "ops", case["name"] + ".h5")
    assert os.path.isfile(path), path
    f = read_case(path)
    a = f["attrs"]
    b, h, hkv, nq, nk, d = (case[k] for k in ("B", "H", "Hkv", "Nq", "Nk", "D"))
    assert a["op"] == "sdpa"
    assert f["inputs"]["q"].shape == (b, h, nq, d)
    assert f["inputs"]["k"].shape == (b, hkv, nk, d) and f["inputs"]["v"].shape == (b, hkv, nk, d)
    assert f["outputs"]["out"].shape == (b, h, nq, d)
    if case.get("bias") is None:
        assert "bias" not in f["inputs"]
    else:
        assert f["inputs"]["bias"].shape == goldens_ops._resolve_shape(case, case["bias"])
    assert math.isclose(float(a["scale"]), case.get("scale", 1 / math.sqrt(d)), rel_tol=1e-15)
    assert int(a["causal"]) == case.get("causal", 0)
    assert _committed_tolerance(a) == (case["atol"], case["rtol"])
    if case.get("dtype") == "bf16":  # q, k, v hold bf16 values
        for n in ("q", "k", "v"):
            x = f["inputs"][n]
            assert not (x.view(np.uint32) & 0xFFFF).any(), n


@pytest.mark.parametrize("case", NORM_GOLDEN, ids=[c["name"] for c in NORM_GOLDEN])
def test_committed_norm_golden_matches_descriptor(case):
    f = read_case(os.path.join(GOLDENS, "ops", case["name"] + ".h5"))
    a, shape = f["attrs"], tuple(case["shape"])
    nchw = case.get("layout", "rows") == "nchw"
    rms = case["name"].startswith("rms_norm")
    assert a["op"] == ("rms_norm" if rms else "layer_norm_2d" if nchw else "layer_norm")
    assert f["inputs"]["x"].shape == shape and f["outputs"]["y"].shape == shape
    c = (shape[1] if nchw else shape[-1],)
    assert {k: v.shape for k, v in f["weights"].items()} == ({"weight": c} if rms else {"weight": c, "bias": c})
    assert float(a["eps"]) == case.get("eps", 1e-6)
    assert _committed_tolerance(a) == (case["atol"], case["rtol"])
    bf16 = all(not (w.view(np.uint32) & 0xFFFF).any() for w in f["weights"].values())
    if case.get("weight_dtype") == "bf16":
        assert bf16


@pytest.mark.parametrize("case", goldens_ops.golden_cases("rope"), ids=lambda c: c["name"])
def test_committed_rope_golden_matches_descriptor(case):
    f = read_case(os.path.join(GOLDENS, "ops", case["name"] + ".h5"))
    a, shape = f["attrs"], tuple(case[k] for k in ("B", "H", "N", "D"))
    assert a["op"] == "rope"
    assert f["inputs"]["x"].shape == shape and f["outputs"]["y"].shape == shape
    pos = f["inputs"]["positions"]
    if case.get("positions", "iota") == "iota":
        assert pos.tolist() == list(range(case.get("pos_start", 0), case.get("pos_start", 0) + case["N"]))
    else:
        assert pos.shape == (case["N"],) and pos.min() >= 0 and pos.max() < 8192
    assert float(a["theta"]) == case.get("theta", 10000.0)
    assert _committed_tolerance(a) == (case["atol"], case["rtol"])


@pytest.mark.parametrize("case", goldens_ops.golden_cases("resize"), ids=lambda c: c["name"])
def test_committed_resize_golden_matches_descriptor(case):
    f = read_case(os.path.join(GOLDENS, "ops", case["name"] + ".h5"))
    a, shape, out = f["attrs"], tuple(case["shape"]), tuple(case["out"])
    assert f["inputs"]["x"].shape == shape
    if case["mode"] == "linear":
        assert a["op"] == "resize_linear" and int(a["out_len"]) == out[0]
    else:
        assert a["op"] == "resize_bicubic_aa" and (int(a["out_h"]), int(a["out_w"])) == out
    assert f["outputs"]["y"].shape == shape[:2] + out
    assert _committed_tolerance(a) == (case["atol"], case["rtol"])


@pytest.mark.parametrize("op", sorted(OPS))
def test_rewriting_goldens_reproduces_committed(op, tmp_path):
    paths = goldens_ops.write_all(str(tmp_path), only=list(OPS[op]))
    names = [c["name"] for c in goldens_ops.golden_cases(op)]
    assert sorted(os.path.basename(p)[:-3] for p in paths) == sorted(names)
    for p in paths:
        new, old = read_case(p), read_case(os.path.join(GOLDENS, "ops", os.path.basename(p)))
        ka = {k: v for k, v in old["attrs"].items() if k != "source"}
        kb = {k: v for k, v in new["attrs"].items() if k != "source"}
        assert ka.keys() == kb.keys(), p
        for k in ka:
            assert np.array_equal(np.asarray(ka[k]), np.asarray(kb[k])), (p, k, ka[k], kb[k])
        for g in ("inputs", "outputs"):
            assert old[g].keys() == new[g].keys(), (p, g)
            for n in old[g]:
                x, y = old[g][n], new[g][n]
                assert x.shape == y.shape and x.dtype == y.dtype, (p, g, n)
                with np.errstate(invalid="ignore"):
                    ok = (x == y) | (np.abs(y.astype(np.float64) - x) <= 1e-5 * np.abs(x.astype(np.float64)))
                assert ok.all(), (p, g, n)

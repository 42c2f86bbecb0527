"""Op golden cases (docs/golden-contract.md, op vocabulary v1): awkward shapes (7, 17, 61, 127) and
real DeepSeek-OCR shapes. Inputs are fp32; weights of real-shape cases are bf16-rounded (as the
checkpoint's) and stored widened; every expected output is computed by dsocr_ref.ops in float64
from those fp32 values, then stored as float32."""
import json
import math
import os

import torch

from . import ops
from .h5 import write_case
from .paths import REPO

F64 = torch.float64


class Rng:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale=1.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * scale

    def uniform(self, *shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=self.g, dtype=torch.float32) * (hi - lo) + lo

    def randint(self, lo, hi, shape):
        return torch.randint(lo, hi, shape, generator=self.g, dtype=torch.int64)


def bf16(t):
    return t.to(torch.bfloat16).to(torch.float32)


def d(t):
    return t.to(F64)


CASES = []  # (name, fn(path, seed))


def case(name):
    def deco(fn):
        CASES.append((name, fn))
        return fn
    return deco


# ---------------------------------------------------------------- op case descriptors
# Some ops' cases are described once, in parity/cases/<op>.json (shared with the op test and the bench,
# parity/op_cases.h): their golden-tagged cases are written here, in file order, at the place they had in CASES
# before the files existed (so their seeds, 1000 + index, are unchanged).
OP_CASE_TAGS = {"golden", "test", "bench"}
CONTRACT_TOLERANCE = (1e-4, 1e-3)  # docs/golden-contract.md §2: what a file without atol/rtol gets


def op_cases_file(op):
    return os.path.join(REPO, "parity", "cases", op + ".json")


SDPA_CASES_FILE = op_cases_file("sdpa")


def load_op_cases(path):
    """-> (op, [case dict]): the descriptors of a parity/cases file, its defaults merged into each case (sweeps are
    left unexpanded: golden cases never have one)."""
    with open(path) as f:
        doc = json.load(f)
    defaults = doc.get("defaults", {})
    cases = []
    for c in doc["cases"]:
        m = dict(defaults)
        m.update(c)
        if not set(m.get("tags", [])) <= OP_CASE_TAGS:
            raise ValueError(f"{path}: case {m.get('name')}: unknown tags {m.get('tags')}")
        cases.append(m)
    return doc["op"], cases


def golden_cases(op, fields=None):
    """The golden-tagged cases of parity/cases/<op>.json, in file order. fields: the op parameters the writer
    writes; a golden case with any other field is refused (None: no check)."""
    path = op_cases_file(op)
    o, cases = load_op_cases(path)
    assert o == op, (path, o)
    out = [c for c in cases if "golden" in c["tags"]]
    for c in out if fields is not None else []:
        extra = set(c) - set(fields) - {"name", "tags", "atol", "rtol"}
        if extra:
            raise ValueError(f"{path}: golden case {c['name']}: fields {sorted(extra)} are not written to goldens")
    return out


def _resolve_shape(c, shape):
    """A descriptor shape (numbers, or names of the case's integer fields) -> a tuple of ints."""
    return tuple(c[e] if isinstance(e, str) else int(e) for e in shape)


def _golden_tolerance(c):
    """The descriptor's tolerance as write_case arguments: none when it is the contract's default (the committed
    files carry no atol/rtol), else both."""
    tol = (c["atol"], c["rtol"])
    return {} if tol == CONTRACT_TOLERANCE else {"atol": tol[0], "rtol": tol[1]}


# ---------------------------------------------------------------- linear
def _linear(path, seed, xshape, n_out, bias, real):
    r = Rng(seed)
    n_in = xshape[-1]
    x = r.randn(*xshape)
    w = r.randn(n_out, n_in, scale=1 / math.sqrt(n_in))
    b = r.randn(n_out, scale=0.1) if bias else None
    w = bf16(w)  # weights: bf16 values, as in the checkpoint (and the files compress 2x)
    b = bf16(b) if b is not None else None
    y = ops.linear(d(x), d(w), d(b) if b is not None else None)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b
    write_case(path, "linear", {}, {"x": x}, weights, {"y": y}, seed=seed)


case("linear_7x17to61_bias")(lambda p, s: _linear(p, s, (7, 17), 61, True, False))
case("linear_2x7x61to127_nobias")(lambda p, s: _linear(p, s, (2, 7, 61), 127, False, False))
case("linear_1x127to17_bias")(lambda p, s: _linear(p, s, (1, 127), 17, True, False))
# real input widths (SAM 768 with bias on 61 tokens; LM 1280 without bias, decode M=1), output
# widths reduced to keep the files small
case("linear_real_sam_768to256")(lambda p, s: _linear(p, s, (1, 17, 768), 256, True, True))
case("linear_real_lm_decode_1280to128")(lambda p, s: _linear(p, s, (1, 1280), 128, False, True))


# ---------------------------------------------------------------- conv2d
def _conv(path, seed, xshape, o, k, stride, padding, bias, real):
    r = Rng(seed)
    x = r.randn(*xshape)
    c = xshape[1]
    w = r.randn(o, c, k, k, scale=1 / math.sqrt(c * k * k))
    b = r.randn(o, scale=0.1) if bias else None
    w = bf16(w)
    b = bf16(b) if b is not None else None
    y = ops.conv2d(d(x), d(w), d(b) if b is not None else None, stride, padding)
    weights = {"weight": w}
    if b is not None:
        weights["bias"] = b
    write_case(path, "conv2d", {"stride": stride, "padding": padding}, {"x": x}, weights, {"y": y}, seed=seed)


case("conv2d_3to7_k3s1p1_17x17_bias")(lambda p, s: _conv(p, s, (1, 3, 17, 17), 7, 3, 1, 1, True, False))
case("conv2d_7to17_k3s2p1_17x61")(lambda p, s: _conv(p, s, (2, 7, 17, 61), 17, 3, 2, 1, False, False))
case("conv2d_5to7_k5s3p2_61x7_bias")(lambda p, s: _conv(p, s, (1, 5, 61, 7), 7, 5, 3, 2, True, False))
# real geometries, output channels reduced to keep the files small:
# SAM patch embedding (k16 s16 with bias) on a 112x112 image (7x7 grid)
case("conv2d_real_patch_embed")(lambda p, s: _conv(p, s, (1, 3, 112, 112), 128, 16, 16, 0, True, True))
# neck.2 3x3 p1 from 256, no bias
case("conv2d_real_neck2_3x3")(lambda p, s: _conv(p, s, (1, 256, 10, 10), 64, 3, 1, 1, False, True))
# net_2/net_3 3x3 s2 p1 (10x10 -> 5x5)
case("conv2d_real_net3_s2")(lambda p, s: _conv(p, s, (1, 256, 10, 10), 32, 3, 2, 1, False, True))


# ---------------------------------------------------------------- norms
def _ln(path, seed, c):
    """A golden case of parity/cases/layer_norm.json (layout nchw: layer_norm_2d)."""
    r = Rng(seed)
    shape, two_d = tuple(c["shape"]), c.get("layout", "rows") == "nchw"
    x = r.randn(*shape, scale=2.0) + 0.5
    ch = shape[1] if two_d else shape[-1]
    w = 1.0 + r.randn(ch, scale=0.2)
    b = r.randn(ch, scale=0.2)
    if c.get("weight_dtype", "f32") == "bf16":
        w, b = bf16(w), bf16(b)
    eps = c.get("eps", 1e-6)
    fn = ops.layer_norm_2d if two_d else ops.layer_norm
    y = fn(d(x), d(w), d(b), eps)
    write_case(path, "layer_norm_2d" if two_d else "layer_norm", {"eps": eps}, {"x": x},
               {"weight": w, "bias": b}, {"y": y}, seed=seed, **_golden_tolerance(c))


def _rms(path, seed, c):
    """A golden case of parity/cases/rms_norm.json."""
    r = Rng(seed)
    shape = tuple(c["shape"])
    x = r.randn(*shape, scale=3.0)
    w = r.randn(shape[-1], scale=0.5) + 1.0
    if c.get("weight_dtype", "f32") == "bf16":
        w = bf16(w)
    eps = c.get("eps", 1e-6)
    y = ops.rms_norm(d(x), d(w), eps)
    write_case(path, "rms_norm", {"eps": eps}, {"x": x}, {"weight": w}, {"y": y}, seed=seed, **_golden_tolerance(c))


for _c in golden_cases("layer_norm", ("shape", "layout", "eps", "weight_dtype")):
    case(_c["name"])(lambda p, s, c=_c: _ln(p, s, c))
for _c in golden_cases("rms_norm", ("shape", "eps", "weight_dtype")):
    case(_c["name"])(lambda p, s, c=_c: _rms(p, s, c))


# ---------------------------------------------------------------- activation, softmax
def _act(path, seed, shape, kind):
    r = Rng(seed)
    x = r.randn(*shape, scale=3.0)
    y = ops.activation(d(x), kind)
    write_case(path, "activation", {"kind": kind}, {"x": x}, None, {"y": y}, seed=seed)


for _k in ("gelu", "quick_gelu", "silu"):
    case(f"activation_{_k}_7x17x61")(lambda p, s, k=_k: _act(p, s, (7, 17, 61), k))
case("activation_gelu_real_sam_3x3072")(lambda p, s: _act(p, s, (3, 3072), "gelu"))
case("activation_quick_gelu_real_clip_3x4096")(lambda p, s: _act(p, s, (3, 4096), "quick_gelu"))
case("activation_silu_real_lm_3x6848")(lambda p, s: _act(p, s, (3, 6848), "silu"))


def _softmax(path, seed, shape, scale, neg_inf=False):
    r = Rng(seed)
    x = r.randn(*shape, scale=scale)
    if neg_inf:
        # causal-style -inf entries (every row keeps at least its first element finite)
        n = shape[-1]
        m = torch.arange(n)[None, :] > (torch.arange(shape[-2])[:, None] % n)
        x = x.masked_fill(m, float("-inf"))
    y = ops.softmax(d(x))
    write_case(path, "softmax", {}, {"x": x}, None, {"y": y}, seed=seed)


case("softmax_7x17")(lambda p, s: _softmax(p, s, (7, 17), 1.0))
case("softmax_3x17x127_large")(lambda p, s: _softmax(p, s, (3, 17, 127), 30.0))
case("softmax_17x61_neginf")(lambda p, s: _softmax(p, s, (17, 61), 5.0, neg_inf=True))
case("softmax_real_3x4096")(lambda p, s: _softmax(p, s, (3, 4096), 4.0))


# ---------------------------------------------------------------- sdpa
def _sdpa(path, seed, b, h, hkv, nq, nk, dd, scale=None, causal=False, bias=None, qkv_bf16=False, qscale=1.0,
          atol=None, rtol=None, causal_prefix=0):
    """qkv_bf16: q, k, v rounded to bf16 values (still stored as fp32; they compress 2x). atol, rtol: written only
    when given (else the file gets the contract's default)."""
    r = Rng(seed)
    q = r.randn(b, h, nq, dd, scale=qscale)
    k = r.randn(b, hkv, nk, dd)
    v = r.randn(b, hkv, nk, dd)
    if qkv_bf16:
        q, k, v = bf16(q), bf16(k), bf16(v)
    if scale is None:
        scale = 1.0 / math.sqrt(dd)
    bt = None
    if bias is not None:
        bt = bias(r) if callable(bias) else r.randn(*bias)
    out = ops.sdpa(d(q), d(k), d(v), d(bt) if bt is not None else None, scale, causal, causal_prefix)
    inputs = {"q": q, "k": k, "v": v}
    if bt is not None:
        inputs["bias"] = bt
    attrs = {"scale": float(scale), "causal": int(causal)}
    if causal_prefix:  # only when used: the files written before it stay as they were
        attrs["causal_prefix"] = int(causal_prefix)
    write_case(path, "sdpa", attrs, inputs, None, {"out": out}, seed=seed, atol=atol, rtol=rtol)


def _sam_window_bias(b, h, k=14, c=64):
    """Dense decomposed rel-pos bias of SAM window attention (14x14 = 196 tokens), from the unscaled
    q of the case and random [27, c] tables."""
    def make(r):
        th = r.randn(2 * k - 1, c, scale=0.1)
        tw = r.randn(2 * k - 1, c, scale=0.1)
        qq = r.randn(b * h, k * k, c)
        return ops.sam_rel_bias(qq, th, tw, k, k).reshape(b, h, k * k, k * k)
    return make


# The sdpa cases are described once, in parity/cases/sdpa.json (shared with the op test and the bench,
# parity/op_cases.h): its golden-tagged cases are written here, in file order (which is their place in CASES, so
# their seeds stay 1000 + index). The real SAM global case (sdpa_real_sam_global_4096keys) runs the real key length
# (4096 keys, D=64, 1 head; 1024 of the 4096 queries) with a per-key bias [1,1,1,4096] broadcast over queries: the
# dense decomposed bias [1,1,4096,4096] would be 64 MB, and the full-size decomposed rel-pos attention (4096x4096,
# tables [127,64]) is the model/sam_block_real_global_64 case, which builds the bias from the tables.
def sdpa_golden_cases():
    """The golden-tagged cases of parity/cases/sdpa.json, in file order."""
    return golden_cases("sdpa")


def _sdpa_from_case(path, seed, c):
    for key in c:
        if key in ("layout", "algo", "splits", "range", "rel_pos", "sweep"):
            raise ValueError(f"{SDPA_CASES_FILE}: golden case {c['name']}: field {key} is not written to goldens")
    bias = None
    if c.get("bias") is not None:
        shape = _resolve_shape(c, c["bias"])
        fill = c.get("bias_fill", "random")
        if fill == "sam_rel_pos":
            k = math.isqrt(c["Nk"])
            assert shape == (c["B"], c["H"], c["Nq"], c["Nk"]) and k * k == c["Nk"], c["name"]
            bias = _sam_window_bias(c["B"], c["H"], k=k, c=c["D"])
        elif fill == "random":
            bias = shape
        else:
            raise ValueError(f"{SDPA_CASES_FILE}: golden case {c['name']}: bias_fill {fill} is not written to goldens")
    _sdpa(path, seed, c["B"], c["H"], c["Hkv"], c["Nq"], c["Nk"], c["D"], scale=c.get("scale"),
          causal=bool(c.get("causal", 0)), bias=bias, qkv_bf16=c.get("dtype", "f32") == "bf16",
          qscale=c.get("q_scale", 1.0), causal_prefix=c.get("causal_prefix", 0), **_golden_tolerance(c))


for _c in sdpa_golden_cases():
    case(_c["name"])(lambda p, s, c=_c: _sdpa_from_case(p, s, c))


# ---------------------------------------------------------------- unfold
def _unfold(path, seed, shape, k, st, pad):
    r = Rng(seed)
    x = r.randn(*shape)
    y = ops.unfold(d(x), k, st, pad)
    write_case(path, "unfold", {"kernel": k, "stride": st, "padding": pad}, {"x": x}, None, {"y": y}, seed=seed)


case("unfold_k2s2_1x7x17x17")(lambda p, s: _unfold(p, s, (1, 7, 17, 17), 2, 2, 0))
case("unfold_k3s2p1_2x3x17x61")(lambda p, s: _unfold(p, s, (2, 3, 17, 61), 3, 2, 1))
case("unfold_k3s1p1_1x5x7x7")(lambda p, s: _unfold(p, s, (1, 5, 7, 7), 3, 1, 1))
case("unfold_real_k2s2_1x128x16x16")(lambda p, s: _unfold(p, s, (1, 128, 16, 16), 2, 2, 0))


# ---------------------------------------------------------------- resize
def _bicubic(path, seed, shape, oh, ow, atol=None, rtol=None):
    r = Rng(seed)
    x = r.randn(*shape)
    y = ops.resize_bicubic_aa(d(x), oh, ow)
    write_case(path, "resize_bicubic_aa", {"out_h": oh, "out_w": ow}, {"x": x}, None, {"y": y}, seed=seed,
               atol=atol, rtol=rtol)


def _linear_resize(path, seed, shape, out_len, atol=None, rtol=None):
    r = Rng(seed)
    x = r.randn(*shape)
    y = ops.resize_linear(d(x), out_len)
    write_case(path, "resize_linear", {"out_len": out_len}, {"x": x}, None, {"y": y}, seed=seed, atol=atol, rtol=rtol)


def _resize_from_case(path, seed, c):
    """A golden case of parity/cases/resize.json: SAM pos_embed 64 -> grid (down: 640/512/768 views; up: 1280), CLIP
    pos 16 -> grid, SAM global rel-pos table 127 -> 2*grid-1 (grid 40/32/48/80), and awkward sizes."""
    shape, out = _resolve_shape(c, c["shape"]), c["out"]
    if c["mode"] == "linear":
        _linear_resize(path, seed, shape, out[0], **_golden_tolerance(c))
    else:
        _bicubic(path, seed, shape, out[0], out[1], **_golden_tolerance(c))


for _c in golden_cases("resize", ("mode", "shape", "out")):
    case(_c["name"])(lambda p, s, c=_c: _resize_from_case(p, s, c))


# ---------------------------------------------------------------- rope
def _rope(path, seed, shape, positions, theta, atol=None, rtol=None):
    r = Rng(seed)
    x = r.randn(*shape)
    pos = positions(r) if callable(positions) else torch.tensor(positions, dtype=torch.int64)
    y = ops.rope(d(x), pos, theta)
    write_case(path, "rope", {"theta": float(theta)}, {"x": x, "positions": pos}, None, {"y": y}, seed=seed,
               atol=atol, rtol=rtol)


def _rope_from_case(path, seed, c):
    """A golden case of parity/cases/rope.json: positions iota from pos_start, or random in [0, 8192) drawn after x."""
    n = c["N"]
    if c.get("positions", "iota") == "random":
        positions = lambda r: r.randint(0, 8192, (n,))  # noqa: E731
    else:
        positions = list(range(c.get("pos_start", 0), c.get("pos_start", 0) + n))
    _rope(path, seed, (c["B"], c["H"], n, c["D"]), positions, c.get("theta", 10000.0), **_golden_tolerance(c))


for _c in golden_cases("rope", ("B", "H", "N", "D", "theta", "positions", "pos_start")):
    case(_c["name"])(lambda p, s, c=_c: _rope_from_case(p, s, c))


# ---------------------------------------------------------------- moe
def _moe(path, seed, t, hidden, n_exp, inter, top_k, n_shared_inter, norm_topk=False, scaling=1.0):
    r = Rng(seed)
    x = r.randn(t, hidden)
    w = {"gate.weight": r.randn(n_exp, hidden, scale=1 / math.sqrt(hidden))}
    for e in range(n_exp):
        w[f"experts.{e}.gate_proj.weight"] = r.randn(inter, hidden, scale=1 / math.sqrt(hidden))
        w[f"experts.{e}.up_proj.weight"] = r.randn(inter, hidden, scale=1 / math.sqrt(hidden))
        w[f"experts.{e}.down_proj.weight"] = r.randn(hidden, inter, scale=1 / math.sqrt(inter))
    if n_shared_inter:
        w["shared_experts.gate_proj.weight"] = r.randn(n_shared_inter, hidden, scale=1 / math.sqrt(hidden))
        w["shared_experts.up_proj.weight"] = r.randn(n_shared_inter, hidden, scale=1 / math.sqrt(hidden))
        w["shared_experts.down_proj.weight"] = r.randn(hidden, n_shared_inter, scale=1 / math.sqrt(n_shared_inter))
    w = {k: bf16(v) for k, v in w.items()}
    y, ids, tw = ops.moe(d(x), {k: d(v) for k, v in w.items()}, top_k, norm_topk, scaling)
    write_case(path, "moe", {"top_k": top_k, "norm_topk_prob": int(norm_topk), "routed_scaling_factor": float(scaling)},
               {"x": x}, w, {"y": y}, taps={"topk_ids": ids, "topk_weights": tw}, seed=seed)


case("moe_awkward_7x17_e8_k3")(lambda p, s: _moe(p, s, 7, 17, 8, 5, 3, 10))
case("moe_61x61_e7_k2_noshared_norm")(lambda p, s: _moe(p, s, 61, 61, 7, 17, 2, 0, norm_topk=True))
case("moe_17x127_e16_k4_scaled")(lambda p, s: _moe(p, s, 17, 127, 16, 7, 4, 14, scaling=2.5))
# the real routing configuration (64 experts, top-6, 2 shared fused, no renorm) at reduced widths
case("moe_real_routing_17x64_e64_k6")(lambda p, s: _moe(p, s, 17, 64, 64, 8, 6, 16))


def write_all(outdir, only=None):
    import os
    import time
    paths = []
    for i, (name, fn) in enumerate(CASES):
        if only and not any(o in name for o in only):
            continue
        seed = 1000 + i
        path = os.path.join(outdir, name + ".h5")
        t = time.time()
        fn(path, seed)
        paths.append(path)
        print(f"  ops/{name}.h5  {os.path.getsize(path) / 1024:.0f} KiB  {time.time() - t:.2f}s", flush=True)
    return paths

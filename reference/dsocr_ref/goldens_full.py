"""Full-dimension golden cases (official DeepSeek-OCR v1 widths and heads) for the block-level ops:

  python3 -m dsocr_ref.goldens_full --out DIR [--device cuda|cpu] [--small]     (run from reference/)

Written to DIR/<case>.h5 (docs/golden-contract.md, schema v1), NOT committed (the MoE layer alone holds
~0.9 GB of weights); run them with `dsocr parity DIR/*.h5`.

  sam_block_full_window          x [1,64,64,768], 12 heads, window 14 (tables [27,64]), MLP 3072
  sam_block_full_global          x [1,64,64,768], global, tables [127,64] (no resize)
  sam_block_full_global_resized  x [1,40,40,768], global, tables [127,64] resized to 79 (a 640 tile)
  clip_encoder_full_2layers      sam_features [1,1024,16,16], CLIP-L width 1024, 16 heads, FFN 4096,
                                 2 layers, positions [257,1024] (no resize)
  clip_encoder_full_2layers_tile sam_features [1,1024,10,10] (positions resized 16 -> 10)
  decoder_layer_full_dense_0     x [64,1280], positions 0..63, dense SwiGLU 6848, 10 heads of 128
  decoder_layer_full_moe_1       x [64,1280], positions 5..68, 64 experts of 896, top-6, 2 shared
                                 experts (1792), softmax router, no renormalisation; taps
                                 topk_ids / topk_weights; x re-drawn until the router's top-7
                                 gaps all exceed 1e-5 (10x the contract's 1e-6 tie window)

Weights: random (CPU generator, seeded: attribute `seed`) with the rules of checkpoint.random_init
(same names, same scales, so that activations stay O(1)), rounded to bf16 and stored widened to
float32. Inputs: float32 N(0,1) (attribute `x_seed`). Expected outputs (and taps): the
dsocr_ref.model modules run in float64 on --device from exactly the stored values, stored as
float32. The same modules also run in float32 on --device (no TF32) and are compared with the
contract rule (atol 1e-4, rtol 1e-3): the measured fp32 error is printed per output, and the
default tolerances are kept unless that check shows them too tight (then only the 4096-token
global SAM block and the MoE layer may carry atol/rtol overrides). Large datasets are gzip level 1
(--gzip; h5.write_case uses 6), which keeps the whole run well under a minute on a GPU machine.

--small shrinks only the token grids (SAM 64/64/40 -> 20/24/16, LM tokens 64 -> 16) for a CPU
smoke test; widths, heads, tables and weights stay full size.

Imports only torch, numpy, h5py and dsocr_ref.{ops,config,model,h5} (no tokenizers, no Pillow).
"""
import argparse
import contextlib
import copy
import math
import os
import sys
import time

import h5py
import numpy as np
import torch

from . import h5 as h5mod
from . import ops
from .config import Config
from .goldens_model import lm_attrs
from .model import ClipEncoder, DecoderLayer, SamBlock

F64 = torch.float64
DEF_ATOL, DEF_RTOL = 1e-4, 1e-3
BASE_SEED = 20251
# the contract's router tie window is 1e-6; x is re-drawn until every top-(k+1) gap is 10x that
GAP_TIE, GAP_REDRAW = 1e-6, 1e-5


# ---------------------------------------------------------------- writer
def source_string(device):
    return (f"dsocr_ref.goldens_full (torch {torch.__version__}, h5py {h5py.__version__}, "
            f"numpy {np.__version__}, fp64 on {device})")


def write_case(path, op, params, inputs, weights, outputs, taps, seed, source, gzip_level, atol=None, rtol=None):
    """h5.write_case's layout (same root attributes, groups and dtype rules), without its Pillow /
    tokenizers version probe, with a selectable gzip level (level 0: no compression)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        f.attrs["format"] = h5mod.FORMAT
        f.attrs["version"] = np.int64(h5mod.VERSION)
        f.attrs["op"] = op
        f.attrs["seed"] = np.int64(seed)
        f.attrs["source"] = source
        if atol is not None:
            f.attrs["atol"] = np.float64(atol)
        if rtol is not None:
            f.attrs["rtol"] = np.float64(rtol)
        for k, v in (params or {}).items():
            f.attrs[k] = h5mod._attr(v)
        for gname, d in (("inputs", inputs), ("weights", weights), ("outputs", outputs), ("taps", taps)):
            if not d:
                continue
            g = f.create_group(gname, track_order=True)
            for name, a in d.items():
                if isinstance(a, torch.Tensor):
                    a = a.detach().cpu()
                a = h5mod._np(a, f"{gname}/{name}")
                kw = {}
                if gzip_level > 0 and a.nbytes >= h5mod.COMPRESS_MIN_BYTES and a.ndim > 0:
                    kw = dict(compression="gzip", compression_opts=gzip_level, shuffle=True)
                g.create_dataset(name, data=a, **kw)
    os.replace(tmp, path)


# ---------------------------------------------------------------- weights
RESID_OUT = ("attn.proj.", "mlp.lin2.", "self_attn.out_proj.", "mlp.fc2.", "self_attn.o_proj.", "down_proj.")


def init_std(name, p):
    """checkpoint.random_init's rule for the parameter of official (full) name `name`:
    (kind, scale) with kind 'one' = 1 + N(0, s²), else N(0, s²)."""
    if name.endswith("norm.weight") or "layernorm" in name or "norm1." in name or "norm2." in name \
            or "layer_norm" in name or "pre_layrnorm" in name:
        return ("one", 0.1) if name.endswith("weight") else ("n", 0.05)
    if name.endswith(".bias"):
        return ("n", 0.05)
    if "rel_pos_" in name:
        return ("n", 0.2)
    if name.endswith("pos_embed") or "position_embedding" in name:
        return ("n", 0.5)
    if name.endswith(("class_embedding", "image_newline", "view_seperator")) or "embed_tokens" in name:
        return ("n", 1.0)
    if p.dim() >= 2:
        s = 1.0 / math.sqrt(int(np.prod(p.shape[1:])))
        if any(k in name for k in RESID_OUT):
            s *= 0.5
        return ("n", s)
    raise ValueError(f"no init rule for {name} {tuple(p.shape)}")


@torch.no_grad()
def random_init_bf16_(module, prefix, seed):
    """In place: random_init's scales (names taken as prefix + local name), then bf16-rounded."""
    g = torch.Generator().manual_seed(seed)
    for n, p in module.named_parameters():
        kind, s = init_std(prefix + n, p)
        v = torch.randn(*p.shape, generator=g, dtype=torch.float32, device="cpu") * s
        if kind == "one":
            v += 1.0
        p.copy_(v.to(torch.bfloat16).to(torch.float32))
    return module


def randn(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32, device="cpu") * scale


# ---------------------------------------------------------------- run in fp64 (golden) and fp32 (check)
class Runner:
    def __init__(self, device, gzip_level, check=True):
        self.device = device
        self.gzip = gzip_level
        self.check = check
        self.source = source_string(device)
        self.report = []  # (case, output, max_abs, worst ratio to the default tolerance)

    def ctx(self):
        # the ops create their index / scratch tensors without a device: on cuda make that the default
        if self.device == "cpu":
            return contextlib.nullcontext()
        return torch.device(self.device)

    def sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    @torch.no_grad()
    def forward(self, module, args, dtype):
        """module (cpu, fp32) run on the device in dtype; args: tensors (floats cast) or other values.
        Returns (outputs as returned, taps dict), everything moved to cpu."""
        m = copy.deepcopy(module).to(device=self.device, dtype=dtype)
        a = [(t.to(self.device, dtype) if t.is_floating_point() else t.to(self.device))
             if isinstance(t, torch.Tensor) else t for t in args]
        taps = {}
        with self.ctx():
            y = m(*a, taps)
        self.sync()
        y = y.cpu()
        taps = {k: v.cpu() for k, v in taps.items()}
        del m, a
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        return y, taps

    def fp32_check(self, name, module, args, ref_out, ref_taps):
        """Max error of the same computation in float32 against the fp64 golden; returns the worst
        ratio |d| / (atol + rtol·|ref|) over the outputs (taps reported, not counted)."""
        if not self.check:
            return 0.0
        y32, t32 = self.forward(module, args, torch.float32)
        worst = 0.0
        items = [("y", y32, ref_out, True)] + [(f"taps/{k}", t32[k], v, False) for k, v in ref_taps.items()]
        for lab, got, ref, counted in items:
            if not ref.is_floating_point():
                mism = int((got != ref).sum())
                print(f"    fp32 check {lab}: {mism} mismatching ids", flush=True)
                if counted and mism:
                    worst = math.inf
                continue
            ref32 = ref.to(torch.float32).double()
            d = (got.double() - ref32).abs()
            ratio = float((d / (DEF_ATOL + DEF_RTOL * ref32.abs())).max())
            rel_l2 = float(d.norm() / ref32.norm())
            print(f"    fp32 check {lab}: max_abs {float(d.max()):.3g}  rel_l2 {rel_l2:.3g}  "
                  f"worst |d|/(atol+rtol|ref|) {ratio:.3g}  (|ref| max {float(ref32.abs().max()):.3g}, "
                  f"std {float(ref32.std()):.3g})", flush=True)
            self.report.append((name, lab, float(d.max()), ratio))
            if counted:
                worst = max(worst, ratio)
        return worst


def tolerance(name, worst, may_override):
    """(atol, rtol) root attributes: None (defaults) unless the fp32 check exceeded them."""
    if worst <= 1.0:
        return None, None
    if not may_override:
        print(f"  WARNING {name}: fp32 exceeds the default tolerance (worst ratio {worst:.3g}); "
              "defaults kept (no override allowed for this case)", flush=True)
        return None, None
    k = 2.0 ** math.ceil(math.log2(2.0 * worst))  # twice the measured need, rounded up to a power of 2
    print(f"  {name}: fp32 error needs {worst:.3g}x the default tolerance: writing atol {DEF_ATOL * k:g}, "
          f"rtol {DEF_RTOL * k:g}", flush=True)
    return DEF_ATOL * k, DEF_RTOL * k


def branch_stats(label, a, b):
    d = (a.double() - b.double())
    print(f"    {label}: std {float(d.std()):.3g}, max |.| {float(d.abs().max()):.3g}", flush=True)


# ---------------------------------------------------------------- cases
CASES, case = h5mod.case_registry()


def sam_block_case(r, out, name, grid, window, block_index, seed, may_override):
    c = Config()  # sam_width 768, sam_heads 12, mlp ratio 4, sam_image_size 1024 (global tables 127)
    blk = SamBlock(c, window)
    random_init_bf16_(blk, f"model.sam_model.blocks.{block_index}.", seed)
    assert blk.attn.rel_pos_h.shape == ((2 * window - 1) if window else 127, 64)
    x = randn((1, grid, grid, c.sam_width), seed + 1)
    y, taps = r.forward(blk, [x], F64)
    branch_stats("attention branch", taps["attn_residual"], x)
    branch_stats("MLP branch", y, taps["attn_residual"])
    worst = r.fp32_check(name, blk, [x], y, taps)
    atol, rtol = tolerance(name, worst, may_override)
    write_case(os.path.join(out, name + ".h5"), "sam_block",
               dict(num_heads=c.sam_heads, window_size=window, block_index=block_index, eps=float(c.sam_ln_eps),
                    x_seed=seed + 1),
               {"x": x}, blk.state_dict(), {"y": y}, taps, seed, r.source, r.gzip, atol, rtol)


def clip_case(r, out, name, g, seed):
    c = Config(clip_layers=2)  # width 1024, 16 heads, mlp 4096, positions 16x16 + 1
    enc = ClipEncoder(c)
    random_init_bf16_(enc, "model.vision_model.", seed)
    assert enc.embeddings.position_embedding.weight.shape == (257, 1024)
    x = randn((1, c.clip_width, g, g), seed + 1)
    y, taps = r.forward(enc, [x], F64)
    branch_stats("layers (y - pre_layrnorm)", y, taps["pre_layrnorm"])
    worst = r.fp32_check(name, enc, [x], y, taps)
    write_case(os.path.join(out, name + ".h5"), "clip_encoder", dict(num_heads=c.clip_heads, x_seed=seed + 1),
               {"sam_features": x}, enc.state_dict(), {"y": y}, taps, seed, r.source, r.gzip)
    tolerance(name, worst, False)


class _LayerCall(torch.nn.Module):
    """DecoderLayer.forward(x, positions, taps, prefix="") as module(x, positions, taps)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, positions, taps):
        return self.layer(x, positions, taps, "")


def router_min_gap(layer, h, k):
    """Smallest gap between consecutive probabilities among the top k+1 of each token (fp64) of the
    router, fed post_attention_layernorm(h) with h the fp64 attention residual."""
    norm = layer.post_attention_layernorm
    with torch.no_grad():
        hn = ops.rms_norm(h.double(), norm.weight.double(), norm.eps)
        p = ops.softmax(hn @ layer.mlp.gate.weight.double().t())
    top = torch.sort(p, dim=-1, descending=True).values[:, :k + 1]
    return float((top[:, :-1] - top[:, 1:]).min())


def decoder_case(r, out, name, idx, n_tok, pos0, seed):
    c = Config()  # hidden 1280, 10 heads of 128, dense 6848, 64 experts of 896, top-6, 2 shared
    layer = DecoderLayer(c, idx)
    random_init_bf16_(layer, f"model.layers.{idx}.", seed)
    mod = _LayerCall(layer)
    pos = torch.arange(n_tok, dtype=torch.int64) + pos0
    moe = c.is_moe_layer(idx)
    attrs = dict(layer_idx=idx, **lm_attrs(c))
    for attempt in range(20):
        xseed = seed + 1 + 1000 * attempt
        x = randn((n_tok, c.hidden_size), xseed)
        y, taps = r.forward(mod, [x, pos], F64)
        if not moe:
            break
        gap = router_min_gap(layer, taps["attn_residual"], c.num_experts_per_tok)
        print(f"    router: min gap among the top-{c.num_experts_per_tok + 1} probabilities {gap:.3g} "
              f"(x seed {xseed})", flush=True)
        if gap > GAP_REDRAW:
            break
    else:
        raise RuntimeError(f"{name}: no x draw without router near-ties in 20 attempts")
    if moe:
        assert gap > GAP_TIE, gap
        assert taps["topk_ids"].shape == (n_tok, c.num_experts_per_tok)
        attrs.update(min_router_gap=gap)
    attrs.update(x_seed=xseed)
    branch_stats("attention branch", taps["attn_residual"], x)
    branch_stats("MLP branch", y, taps["attn_residual"])
    worst = r.fp32_check(name, mod, [x, pos], y, taps)
    atol, rtol = tolerance(name, worst, moe)
    write_case(os.path.join(out, name + ".h5"), "decoder_layer", attrs, {"x": x, "positions": pos},
               layer.state_dict(), {"y": y}, taps, seed, r.source, r.gzip, atol, rtol)


def define_cases(small):
    sw, sg, sr = (20, 24, 16) if small else (64, 64, 40)
    nt = 16 if small else 64
    CASES.clear()
    specs = [  # name, builder, arguments after (runner, out, name)
        ("sam_block_full_window", sam_block_case, (sw, 14, 0, BASE_SEED + 10, False)),
        ("sam_block_full_global", sam_block_case, (sg, 0, 2, BASE_SEED + 20, True)),
        ("sam_block_full_global_resized", sam_block_case, (sr, 0, 2, BASE_SEED + 30, False)),
        ("clip_encoder_full_2layers", clip_case, (16, BASE_SEED + 40)),
        ("clip_encoder_full_2layers_tile", clip_case, (10, BASE_SEED + 50)),
        ("decoder_layer_full_dense_0", decoder_case, (0, nt, 0, BASE_SEED + 60)),
        ("decoder_layer_full_moe_1", decoder_case, (1, nt, 5, BASE_SEED + 70)),
    ]
    for name, fn, a in specs:
        case(name)(lambda r, o, name=name, fn=fn, a=a: fn(r, o, name, *a))


def set_fp32_ieee():
    """fp32 check in true fp32 on cuda (no TF32)."""
    try:
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.fp32_precision = "ieee"
    except AttributeError:
        pass
    if not hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="where the fp64 goldens (and the fp32 check) run: cuda, cuda:N or cpu")
    ap.add_argument("--small", action="store_true", help="small token grids (CPU smoke test)")
    ap.add_argument("--only", nargs="*", help="write only cases whose name contains one of these")
    ap.add_argument("--gzip", type=int, default=1, help="gzip level of the large datasets (0: none; default 1)")
    ap.add_argument("--no-check", action="store_true", help="skip the fp32-vs-fp64 tolerance check")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("error: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
            return 2
        set_fp32_ieee()
    define_cases(args.small)
    r = Runner(args.device, args.gzip, not args.no_check)
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(torch.device(args.device))})" if args.device.startswith("cuda") else "")
          + (", --small" if args.small else ""), flush=True)
    t0 = time.time()
    n = 0
    for name, fn in CASES:
        if args.only and not any(o in name for o in args.only):
            continue
        t = time.time()
        print(f"{name}:", flush=True)
        fn(r, args.out)
        p = os.path.join(args.out, name + ".h5")
        print(f"  {p}  {os.path.getsize(p) / 2**20:.1f} MiB  {time.time() - t:.1f}s", flush=True)
        n += 1
    if r.report:
        w = max(r.report, key=lambda e: e[3])
        print(f"fp32-vs-fp64: worst ratio to the default tolerance {w[3]:.3g} ({w[0]} {w[1]}, max_abs {w[2]:.3g})")
    print(f"wrote {n} full-dimension golden files under {args.out} in {time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

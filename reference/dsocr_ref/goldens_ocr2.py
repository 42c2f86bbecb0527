"""DeepSeek-OCR-2 golden cases (docs/golden-contract.md §7), written to a folder given on the command line:

  python -m dsocr_ref.goldens_ocr2 --out DIR [--only NAME ...]        (run from reference/)

Layout under DIR (as dsocr_ref.goldens, so that relative checkpoint paths look alike):
  model/<case>.h5   the cases below
  tiny-ckpt-ocr2/   the tiny random DeepSeek-OCR-2 checkpoint in the official v2 layout
  images/           the test images (dsocr_ref.images)
`python -m dsocr_ref.goldens --out tests/goldens` writes the COMMITTED cases (and the checkpoint) with v1's;
the others are too large to commit (the 896-wide layer: 6 MB) or covered by a committed case.

Cases:
  qwen2_encoder_layer_tiny_global_l1   layer 1 of the tiny encoder on the global view (N = 256: 512 tokens)
  qwen2_encoder_layer_real_heads_tile  the official attention geometry (hidden 896, 14 heads on 2 KV heads of
                                       64, θ 1e6) at a tile's N = 144 (288 tokens), FFN reduced to 256;
                                       random bf16 weights, expected output computed in float64
  qwen2_encoder_layer_full_dims        every official dimension (FFN 4864 too) at N = 36 (72 tokens); sparse
                                       ternary matrix weights (0, ±2^-e), so that the file stays near 3 MB
  qwen2_encoder_tiny_global            the whole tiny encoder on the global view's SAM map (query_1024)
  qwen2_encoder_tiny_tile              the whole tiny encoder on one 768 tile's SAM map (query_768)
  vision_encoder_ocr2_global_only      a 640x480 image: no tiles, 257 embeddings
  vision_encoder_ocr2_tiles_2x3        a 900x1200 page: 6 tiles (2 cols, 3 rows), 1121 embeddings
  model_logits_ocr2_text, model_logits_ocr2_image, model_generate_ocr2_image_tiles   on the v2 checkpoint
Model math in fp32 on bf16-valued weights, as goldens_model does for v1.
"""
import argparse
import copy
import os
import sys
import time

import torch

from . import checkpoint, config as cfgmod, generate, images, ocr2, preprocess, tokenizer as tokmod
from .goldens_model import _pix_inputs, lm_attrs, sub
from .h5 import case_registry, run_cases, write_case

CKPT_DIR = "tiny-ckpt-ocr2"
COMMITTED = ["qwen2_encoder_layer_tiny_global_l1", "qwen2_encoder_layer_full_dims", "qwen2_encoder_tiny_global", "qwen2_encoder_tiny_tile",
             "vision_encoder_ocr2_tiles_2x3", "model_logits_ocr2_text", "model_logits_ocr2_image",
             "model_generate_ocr2_image_tiles"]  # under tests/goldens (dsocr_ref.goldens writes them)
CKPT_SEED = 4321
MODE = "ocr2"  # informational `mode` attribute of the v2 vision and model cases


class Ctx:
    def __init__(self, outdir):
        self.out = outdir
        self.ckpt = os.path.join(outdir, CKPT_DIR)
        self.mdir = os.path.join(outdir, "model")
        checkpoint.write_tiny_v2(self.ckpt, CKPT_SEED)
        self.m, self.c = checkpoint.load(self.ckpt)  # what a reader of the files gets
        assert isinstance(self.m, ocr2.DeepseekOCR2)
        self.tok = tokmod.load(self.ckpt)
        self.img_paths = images.write_all(os.path.join(outdir, "images"))
        self.image_token_id = self.tok.token_to_id("<image>")
        self._views, self._emb = {}, {}

    def views(self, img):
        if img not in self._views:
            self._views[img] = preprocess.views_v2(preprocess.load_rgb(self.img_paths[img]))
        return self._views[img]

    def sam(self, img, which):
        """SAM output of the global view (which = "global") or of tile k (which = k), from the vision
        embeddings' taps (one SAM run per image)."""
        _, taps = self.embeds(img)
        return taps["global.sam"] if which == "global" else taps["tiles.sam"][which:which + 1]

    def embeds(self, img):
        if img not in self._emb:
            g, t, grid = self.views(img)
            taps = {}
            self._emb[img] = (self.m.vision_embeddings(g, t, grid, taps), taps)
        return self._emb[img]

    def path(self, name):
        return os.path.join(self.mdir, name + ".h5")

    def ckpt_rel(self):
        return os.path.relpath(self.ckpt, self.mdir)

    def qwen2_attrs(self):
        c = self.c
        return dict(num_heads=c.qwen2_heads, rope_theta=float(c.qwen2_rope_theta), eps=float(c.qwen2_rms_eps))

    def enc_attrs(self):
        c = self.c
        return dict(sam_heads=c.sam_heads, window_size=c.sam_window_size, global_blocks=list(c.sam_global_blocks),
                    qwen2_heads=c.qwen2_heads, qwen2_rope_theta=float(c.qwen2_rope_theta),
                    qwen2_eps=float(c.qwen2_rms_eps))

    def lm_attrs(self):
        return lm_attrs(self.c)


CASES, case = case_registry()


# ------------------------------------------------------------------ qwen2_encoder_layer
@case("qwen2_encoder_layer_tiny_global_l1")
def _(cx):
    enc = cx.m.model.qwen2_model
    taps = {}
    enc(cx.sam("rgba.png", "global"), taps)
    x = taps["layers.0"]
    n = x.shape[1] // 2
    pos = torch.arange(2 * n)
    lt = {}
    y = enc.model.model.layers[1](x, pos, n, lt)
    write_case(cx.path("qwen2_encoder_layer_tiny_global_l1"), "qwen2_encoder_layer",
               dict(causal_prefix=n, layer_idx=1, **cx.qwen2_attrs()), {"x": x, "positions": pos},
               sub(cx.m, "model.qwen2_model.model.model.layers.1."), {"y": y}, lt)


@case("qwen2_encoder_layer_real_heads_tile")
def _(cx, seed=91):
    c = cfgmod.Config(version=2, qwen2_intermediate=256)  # official 896 / 14 / 2 / θ 1e6 / eps 1e-6
    layer = ocr2.Qwen2EncoderLayer(c)
    checkpoint.random_init(layer, seed)
    checkpoint.round_bf16_(layer)
    n = c.qwen2_query_tile
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(1, 2 * n, c.qwen2_hidden, generator=g).to(torch.bfloat16).float()  # bf16 values: compress 2x
    pos = torch.arange(2 * n)
    lt = {}
    y = copy.deepcopy(layer).double()(x.double(), pos, n, lt)
    write_case(cx.path("qwen2_encoder_layer_real_heads_tile"), "qwen2_encoder_layer",
               dict(causal_prefix=n, num_heads=c.qwen2_heads, rope_theta=float(c.qwen2_rope_theta),
                    eps=float(c.qwen2_rms_eps)),
               {"x": x, "positions": pos}, dict(layer.state_dict()), {"y": y}, lt, seed=seed)


@case("qwen2_encoder_layer_full_dims")
def _(cx, seed=93, n=36):
    """Every dimension of the official layer (hidden 896, 14 heads on 2 KV heads of 64, SwiGLU 4864,
    θ 1e6, eps 1e-6) on a 6x6 grid (N = 36: 72 tokens). The 15 M matrix weights are sparse ternary,
    0 or ±2^-e (one in eight nonzero, e from the fan-in as for N(0, 1/fan_in)), stored as float16
    (exact): three values gzip to about 1.1 bits each, so the file stays near 2.5 MB where normal
    bf16 weights would take 30 MB. Biases and norm weights are normal, as in every other case."""
    import math
    c = cfgmod.Config(version=2)  # official 896 / 14 / 2 / 4864 / θ 1e6 / eps 1e-6
    layer = ocr2.Qwen2EncoderLayer(c)
    checkpoint.random_init(layer, seed)
    checkpoint.round_bf16_(layer)
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if p.dim() != 2:
                continue
            fan_in = p.shape[1]
            scale = 2.0 ** round(math.log2(1.0 / math.sqrt(0.125 * fan_in)))
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                scale /= 2  # residual branches halved, as random_init does
            keep = torch.rand(p.shape, generator=g) < 0.125
            sign = torch.where(torch.rand(p.shape, generator=g) < 0.5, -1.0, 1.0)
            p.copy_(torch.where(keep, sign * scale, 0.0))  # +0.0, never -0.0: three distinct bit patterns
    x = torch.randn(1, 2 * n, c.qwen2_hidden, generator=g).to(torch.bfloat16).float()
    pos = torch.arange(2 * n)
    y = copy.deepcopy(layer).double()(x.double(), pos, n, {})
    weights = {k: (v.numpy().astype("float16") if v.dim() == 2 else v) for k, v in layer.state_dict().items()}
    write_case(cx.path("qwen2_encoder_layer_full_dims"), "qwen2_encoder_layer",
               dict(causal_prefix=n, layer_idx=0, num_heads=c.qwen2_heads, rope_theta=float(c.qwen2_rope_theta),
                    eps=float(c.qwen2_rms_eps)),
               {"x": x, "positions": pos}, weights, {"y": y}, seed=seed)


# ------------------------------------------------------------------ qwen2_encoder
def _encoder(cx, name, img, which):
    feats = cx.sam(img, which)
    taps = {}
    y = cx.m.model.qwen2_model(feats, taps)
    taps = {k: v for k, v in taps.items() if k.startswith("layers.")}
    write_case(cx.path(name), "qwen2_encoder", cx.qwen2_attrs(), {"sam_features": feats},
               sub(cx.m, "model.qwen2_model."), {"y": y}, taps)


case("qwen2_encoder_tiny_global")(lambda cx: _encoder(cx, "qwen2_encoder_tiny_global", "rgba.png", "global"))
case("qwen2_encoder_tiny_tile")(lambda cx: _encoder(cx, "qwen2_encoder_tiny_tile", "text_page.png", 0))


# ------------------------------------------------------------------ vision_encoder (v2 checkpoint weights)
V2_VISION_PREFIXES = ("sam_model.", "qwen2_model.", "projector.", "view_seperator")


def _vision(cx, name, img, grid_expected):
    g, t, grid = cx.views(img)
    assert tuple(grid) == grid_expected, (img, grid)
    emb, taps = cx.embeds(img)
    assert emb.shape[0] == preprocess.n_image_tokens_v2(t.shape[0]), emb.shape
    taps = {k: v for k, v in taps.items() if not k.endswith("projected")}
    w = {k: v for k, v in sub(cx.m, "model.").items() if k.startswith(V2_VISION_PREFIXES)}
    write_case(cx.path(name), "vision_encoder", dict(mode=MODE, **cx.enc_attrs()), _pix_inputs(g, t, grid), w,
               {"embeds": emb}, taps)


case("vision_encoder_ocr2_global_only")(lambda cx: _vision(cx, "vision_encoder_ocr2_global_only", "rgba.png", (1, 1)))
case("vision_encoder_ocr2_tiles_2x3")(lambda cx: _vision(cx, "vision_encoder_ocr2_tiles_2x3", "text_page.png", (2, 3)))


# ------------------------------------------------------------------ whole model on the v2 checkpoint
def _model_inputs(cx, prompt, img=None):
    if img is None:
        return torch.tensor(tokmod.prompt_ids(cx.tok, prompt, 0)), None, {}
    g, t, grid = cx.views(img)
    emb, _ = cx.embeds(img)
    ids = torch.tensor(tokmod.prompt_ids(cx.tok, prompt, emb.shape[0]))
    return ids, emb, _pix_inputs(g, t, grid)


def _model_attrs(cx, img):
    a = dict(checkpoint=cx.ckpt_rel(), image_token_id=cx.image_token_id, **cx.lm_attrs(), **cx.enc_attrs())
    if img is not None:
        a["mode"] = MODE
    return a


def _logits_case(cx, name, prompt, img=None):
    ids, emb, pix = _model_inputs(cx, prompt, img)
    taps = {}
    lg = cx.m.logits(ids, emb, cx.image_token_id, taps)
    taps = {k: v for k, v in taps.items() if k == "embeddings" or k.count(".") == 1 or k == "norm"}
    if emb is not None:
        taps["image_embeds"] = emb
    write_case(cx.path(name), "model_logits", _model_attrs(cx, img), {"input_ids": ids, **pix}, None,
               {"logits": lg}, taps)


case("model_logits_ocr2_text")(lambda cx: _logits_case(
    cx, "model_logits_ocr2_text", "<|User|>Describe the table.\n<|Assistant|>Revenue 2024: 1,234,567 USD."))
case("model_logits_ocr2_image")(lambda cx: _logits_case(
    cx, "model_logits_ocr2_image", "<image>\n<|grounding|>Convert the document to markdown.", "rgba.png"))


def _generate_case(cx, name, prompt, img, max_new, n, window):
    ids, emb, pix = _model_inputs(cx, prompt, img)
    whitelist = [cx.tok.token_to_id("<td>"), cx.tok.token_to_id("</td>")]
    st = {}
    out = generate.generate(cx.m, ids, emb, cx.image_token_id, max_new, n, window, whitelist,
                            cx.c.eos_token_id, st)
    attrs = dict(max_new_tokens=max_new, ngram_size=n, ngram_window=window, ngram_whitelist=whitelist,
                 ngram_scope="generated", min_logit_margin=float(st["min_margin"]),
                 banned_steps=int(st["n_banned_steps"]), **_model_attrs(cx, img))
    write_case(cx.path(name), "model_generate", attrs, {"input_ids": ids, **pix}, None,
               {"tokens": torch.tensor(out, dtype=torch.int64)})


# n-gram 20 / window 90: the official v2 image script (model-spec §4)
case("model_generate_ocr2_image_tiles")(lambda cx: _generate_case(
    cx, "model_generate_ocr2_image_tiles", "<image>\nFree OCR.", "text_page.png", 48, 20, 90))


# ------------------------------------------------------------------ driver
@torch.no_grad()
def write_all(outdir, only=None, log=print):
    """Writes the cases whose name contains one of `only` (all when None) -> their paths."""
    t0 = time.time()
    cx = Ctx(outdir)
    log(f"  {CKPT_DIR} + images ({time.time() - t0:.1f}s)")
    return run_cases(CASES, cx, only, log)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--only", nargs="*", help="write only cases whose name contains one of these")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    n = len(write_all(args.out, args.only, log=lambda s: print(s, flush=True)))
    print(f"wrote {n} DeepSeek-OCR-2 golden files under {args.out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

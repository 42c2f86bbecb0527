"""Layer and model golden cases on the tiny checkpoint (tests/goldens/tiny-ckpt), plus
image_preprocess and tokenize cases. All model math in fp32 on bf16-valued weights."""
import math
import os
import time

import numpy as np
import torch

from . import checkpoint, generate, images, ops, preprocess, tokenizer as tokmod
from .h5 import case_registry, run_cases, write_case

CKPT_DIR = "tiny-ckpt"
CKPT_SEED = 1234


def sub(m, prefix):
    """state_dict entries under prefix, names relative to it."""
    return {k[len(prefix):]: v for k, v in m.state_dict().items() if k.startswith(prefix)}


class Ctx:
    def __init__(self, outdir):
        self.out = outdir
        self.ckpt = os.path.join(outdir, CKPT_DIR)
        self.imgdir = os.path.join(outdir, "images")
        self.mdir = os.path.join(outdir, "model")
        m, c, tok = checkpoint.write_tiny(self.ckpt, CKPT_SEED)
        # reload through the loader: the goldens use exactly what a reader of the files gets
        self.m, self.c = checkpoint.load(self.ckpt)
        self.tok = tokmod.load(self.ckpt)
        self.img_paths = images.write_all(self.imgdir)
        self.image_token_id = self.tok.token_to_id("<image>")
        self._views = {}

    def rgb(self, name):
        return preprocess.load_rgb(self.img_paths[name])

    def views(self, name, mode, max_tiles=9):
        k = (name, mode, max_tiles)
        if k not in self._views:
            self._views[k] = preprocess.views(self.rgb(name), mode, max_tiles)
        return self._views[k]

    def path(self, name):
        return os.path.join(self.mdir, name + ".h5")

    def enc_attrs(self):
        c = self.c
        return dict(sam_heads=c.sam_heads, clip_heads=c.clip_heads, window_size=c.sam_window_size,
                    global_blocks=list(c.sam_global_blocks))

    def lm_attrs(self):
        return lm_attrs(self.c)

    def ckpt_rel(self):
        return os.path.relpath(self.ckpt, self.mdir)


CASES, case = case_registry()


def lm_attrs(c):
    """The language model's attributes of model_logits / model_generate cases (contract §3)."""
    return dict(num_heads=c.num_attention_heads, rope_theta=float(c.rope_theta), top_k=c.num_experts_per_tok,
                eps=float(c.rms_norm_eps), norm_topk_prob=int(c.norm_topk_prob),
                routed_scaling_factor=float(c.routed_scaling_factor))


def _pix_inputs(g, t, grid):
    d = {"global_view": g}
    if t.shape[0] > 0:
        d["tiles"] = t
    d["grid"] = torch.tensor(grid, dtype=torch.int64)
    return d


# ------------------------------------------------------------------ SAM blocks
@case("sam_block_window_tiny")
def _(cx):
    """block 0 (windowed, 14) on a 32x32 grid (512 view): zero padding 32 -> 42, 3x3 windows."""
    g, _, _ = cx.views("text_page.png", "tiny")
    taps = {}
    cx.m.model.sam_model(g, taps)
    x = taps["pos_added"]
    bt = {}
    y = cx.m.model.sam_model.blocks[0](x, bt)
    write_case(cx.path("sam_block_window_tiny"), "sam_block",
               dict(num_heads=cx.c.sam_heads, window_size=cx.c.sam_window_size, block_index=0),
               {"x": x}, sub(cx.m, "model.sam_model.blocks.0."), {"y": y}, bt)


@case("sam_block_global_tiny_table_resize")
def _(cx):
    """block 1 (global, 127-row tables resized to 2*32-1 = 63) on a 32x32 grid."""
    g, _, _ = cx.views("text_page.png", "tiny")
    taps = {}
    cx.m.model.sam_model(g, taps)
    x = taps["blocks.0"]
    bt = {}
    y = cx.m.model.sam_model.blocks[1](x, bt)
    write_case(cx.path("sam_block_global_tiny_table_resize"), "sam_block",
               dict(num_heads=cx.c.sam_heads, window_size=0, block_index=1),
               {"x": x}, sub(cx.m, "model.sam_model.blocks.1."), {"y": y}, bt)


def _real_sam_block(cx, name, grid, window, seed):
    """Real-shape attention (head dim 64, 1 head, width 64) with random weights: the global case
    has the real 64x64 grid (4096 tokens) and the real [127,64] tables (no resize), so it checks the
    full-size decomposed rel-pos attention without a 64 MB dense bias in the file."""
    from .config import Config
    from .model import SamBlock
    c = Config(sam_width=64, sam_heads=1, sam_window_size=14)
    g = torch.Generator().manual_seed(seed)
    blk = SamBlock(c, window)
    with torch.no_grad():
        for n, p in blk.named_parameters():
            if "norm" in n:
                v = 1 + 0.1 * torch.randn(p.shape, generator=g) if n.endswith("weight") else 0.05 * torch.randn(p.shape, generator=g)
            elif "rel_pos" in n:
                v = 0.2 * torch.randn(p.shape, generator=g)
            elif n.endswith("bias"):
                v = 0.05 * torch.randn(p.shape, generator=g)
            else:
                v = torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1])
            p.copy_(v.to(torch.bfloat16).float())
    x = torch.randn(1, grid, grid, 64, generator=g).to(torch.bfloat16).float()  # bf16 values: compress 2x
    with torch.no_grad():
        y = blk(x)
    write_case(cx.path(name), "sam_block", dict(num_heads=1, window_size=window), {"x": x},
               {k: v for k, v in blk.state_dict().items()}, {"y": y}, seed=seed)


case("sam_block_real_global_64")(lambda cx: _real_sam_block(cx, "sam_block_real_global_64", 64, 0, 77))
case("sam_block_real_window_20")(lambda cx: _real_sam_block(cx, "sam_block_real_window_20", 20, 14, 78))


# ------------------------------------------------------------------ encoders
def _sam_encoder(cx, name, img, mode, block_taps=True):
    g, _, _ = cx.views(img, mode)
    taps = {}
    y = cx.m.model.sam_model(g, taps)
    taps = {k: v for k, v in taps.items() if (block_taps and k.startswith("blocks.")) or k == "neck"}
    write_case(cx.path(name), "sam_encoder",
               dict(num_heads=cx.c.sam_heads, window_size=cx.c.sam_window_size, global_blocks=list(cx.c.sam_global_blocks)),
               {"pixels": g}, sub(cx.m, "model.sam_model."), {"y": y}, taps)


case("sam_encoder_tiny_512")(lambda cx: _sam_encoder(cx, "sam_encoder_tiny_512", "text_page.png", "tiny"))


def _clip_encoder(cx, name, img, mode):
    g, _, _ = cx.views(img, mode)
    sam = cx.m.model.sam_model(g)
    taps = {}
    y = cx.m.model.vision_model(sam, taps)
    write_case(cx.path(name), "clip_encoder", dict(num_heads=cx.c.clip_heads),
               {"sam_features": sam}, sub(cx.m, "model.vision_model."), {"y": y}, taps)


case("clip_encoder_tiny_8x8_pos_resize")(lambda cx: _clip_encoder(cx, "clip_encoder_tiny_8x8_pos_resize", "text_page.png", "tiny"))


def _vision(cx, name, img, mode, max_tiles=9):
    g, t, grid = cx.views(img, mode, max_tiles)
    taps = {}
    emb = cx.m.vision_embeddings(g, t, grid, taps)
    taps = {k: v for k, v in taps.items() if not k.endswith("projected")}
    n = preprocess.n_image_tokens(mode, grid, t.shape[0])
    assert emb.shape[0] == n, (emb.shape, n)
    w = {k: v for k, v in sub(cx.m, "model.").items()
         if k.startswith(("sam_model.", "vision_model.", "projector.", "image_newline", "view_seperator"))}
    write_case(cx.path(name), "vision_encoder", dict(mode=mode, **cx.enc_attrs()), _pix_inputs(g, t, grid), w,
               {"embeds": emb}, taps)


case("vision_encoder_base")(lambda cx: _vision(cx, "vision_encoder_base", "text_page.png", "base"))
case("vision_encoder_gundam_2x3")(lambda cx: _vision(cx, "vision_encoder_gundam_2x3", "text_page.png", "gundam"))


# ------------------------------------------------------------------ decoder layers
def _prompt_hidden(cx):
    text = "# Report\n\nRevenue 2024: 1,234,567 USD. The quick brown fox jumps over the lazy dog.\n<td>cell</td>"
    ids = torch.tensor(tokmod.prompt_ids(cx.tok, text, 0))
    taps = {}
    cx.m.logits(ids, taps=taps)
    return ids, taps


@case("decoder_layer_dense_0")
def _(cx):
    ids, taps = _prompt_hidden(cx)
    x = taps["embeddings"]
    pos = torch.arange(x.shape[0])
    lt = {}
    y = cx.m.model.layers[0](x, pos, lt, "")
    write_case(cx.path("decoder_layer_dense_0"), "decoder_layer", dict(layer_idx=0, **cx.lm_attrs()),
               {"x": x, "positions": pos}, sub(cx.m, "model.layers.0."), {"y": y}, lt)


@case("decoder_layer_moe_1")
def _(cx):
    ids, taps = _prompt_hidden(cx)
    x = taps["layers.0"]
    pos = torch.arange(x.shape[0]) + 5  # a nonzero start position
    lt = {}
    y = cx.m.model.layers[1](x, pos, lt, "")
    write_case(cx.path("decoder_layer_moe_1"), "decoder_layer", dict(layer_idx=1, **cx.lm_attrs()),
               {"x": x, "positions": pos}, sub(cx.m, "model.layers.1."), {"y": y}, lt)


# ------------------------------------------------------------------ whole model
def _model_inputs(cx, prompt, img=None, mode=None):
    if img is None:
        ids = torch.tensor(tokmod.prompt_ids(cx.tok, prompt, 0))
        return ids, None, {}
    g, t, grid = cx.views(img, mode)
    emb = cx.m.vision_embeddings(g, t, grid)
    ids = torch.tensor(tokmod.prompt_ids(cx.tok, prompt, emb.shape[0]))
    return ids, emb, _pix_inputs(g, t, grid)


def _logits_case(cx, name, prompt, img=None, mode=None):
    ids, emb, pix = _model_inputs(cx, prompt, img, mode)
    taps = {}
    lg = cx.m.logits(ids, emb, cx.image_token_id, taps)
    taps = {k: v for k, v in taps.items() if k == "embeddings" or k.count(".") == 1 or k == "norm"}
    if emb is not None:
        taps["image_embeds"] = emb
    attrs = dict(checkpoint=cx.ckpt_rel(), image_token_id=cx.image_token_id, **cx.lm_attrs(), **cx.enc_attrs())
    if mode:
        attrs["mode"] = mode
    write_case(cx.path(name), "model_logits", attrs, {"input_ids": ids, **pix}, None, {"logits": lg}, taps)


case("model_logits_text")(lambda cx: _logits_case(
    cx, "model_logits_text", "<|User|>Describe the table.\n<|Assistant|>Revenue 2024: 1,234,567 USD; 深度求索 OCR."))
case("model_logits_image_tiny")(lambda cx: _logits_case(
    cx, "model_logits_image_tiny", "<image>\n<|grounding|>Convert the document to markdown.", "text_page.png", "tiny"))


def _generate_case(cx, name, prompt, img, mode, max_new, n, window):
    ids, emb, pix = _model_inputs(cx, prompt, img, mode)
    whitelist = [cx.tok.token_to_id("<td>"), cx.tok.token_to_id("</td>")]
    st = {}
    out = generate.generate(cx.m, ids, emb, cx.image_token_id, max_new, n, window, whitelist,
                            cx.c.eos_token_id, st)
    assert len(out) >= 64, len(out)
    attrs = dict(checkpoint=cx.ckpt_rel(), image_token_id=cx.image_token_id, max_new_tokens=max_new,
                 ngram_size=n, ngram_window=window, ngram_whitelist=whitelist, ngram_scope="generated",
                 min_logit_margin=float(st["min_margin"]), banned_steps=int(st["n_banned_steps"]),
                 mode=mode, **cx.lm_attrs(), **cx.enc_attrs())
    write_case(cx.path(name), "model_generate", attrs, {"input_ids": ids, **pix}, None,
               {"tokens": torch.tensor(out, dtype=torch.int64)})
    return st


case("model_generate_image_tiny_ngram3")(lambda cx: _generate_case(
    cx, "model_generate_image_tiny_ngram3", "<image>\nFree OCR.", "text_page.png", "tiny", 80, 3, 24))
case("model_generate_image_base_ngram30")(lambda cx: _generate_case(
    cx, "model_generate_image_base_ngram30", "<image>\n<|grounding|>OCR this image.", "table_wide.png", "base", 64, 30, 90))


# ------------------------------------------------------------------ tokenize
TOKENIZE_TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog.",
    "digits": "Order 1234567 costs $89.99 (12,345 units) on 2024-03-15.",
    "cjk": "深度求索发布了光学字符识别模型。日本語のテキスト、カタカナとひらがな。",
    "whitespace": "  two leading spaces\n\n\tTab\there   trailing   \r\nCRLF line\n",
    "prompt_specials": "<image>\n<|grounding|>Convert the document to markdown.",
    "markup": "<|ref|>title<|/ref|><|det|>[[12, 34, 567, 89]]<|/det|><tr><td>a</td><td>b</td></tr>",
    "latex_code": "\\[ E = mc^2 \\] and `y[i] += a * x[i];` with \\frac{1}{2}",
    "unicode": "Emoji 😀, Greek Ελληνικά, Russian Русский, Korean 한국어, symbols ±×÷→≤≥∞.",
}


def _tokenize(cx, key, text):
    ids = tokmod.encode(cx.tok, text)
    b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    write_case(cx.path(f"tokenize_{key}"), "tokenize", dict(checkpoint=cx.ckpt_rel()), {"text": b}, None,
               {"ids": torch.tensor(ids, dtype=torch.int64)})


for _k, _t in TOKENIZE_TEXTS.items():
    case(f"tokenize_{_k}")(lambda cx, k=_k, t=_t: _tokenize(cx, k, t))


# ------------------------------------------------------------------ image_preprocess
PREPROCESS_CASES = [
    # (image, mode, max_tiles)
    ("gradient.png", "tiny", 9),         # stretch 333x517 -> 512x512
    ("grayscale.png", "base", 9),        # L mode -> RGB, wide pad
    ("rgba.png", "large", 9),            # RGBA -> RGB (alpha dropped as convert("RGB") does)
    ("rgba.png", "gundam", 6),           # 640x480 <= 640: no tiles, global pad only
    ("table_wide.png", "gundam", 9),     # aspect 2.5, exact tie (2,1)/(3,1): area rule picks (3,1)
    ("exif_rot6.jpg", "gundam", 6),      # EXIF-rotated to 400x1000 (aspect 0.4) -> (1,3)
    ("text_page.png", "gundam", 9),      # 900x1200 -> (2,3)
    ("text_page.png", "small", 9),
    ("table_wide.png", "ocr2", 6),       # DeepSeek-OCR-2: 1024 global + 768 tiles, aspect 2.5 -> (3,1)
]


def _preprocess(cx, img, mode, max_tiles):
    rgb = cx.rgb(img)
    g, t, grid = preprocess.views(rgb, mode, max_tiles)
    a = np.asarray(rgb, dtype=np.uint8)
    name = f"image_preprocess_{os.path.splitext(img)[0]}_{mode}_max{max_tiles}"
    write_case(cx.path(name), "image_preprocess",
               dict(mode=mode, max_tiles=max_tiles, image_file=os.path.relpath(cx.img_paths[img], cx.mdir)),
               {"rgb": a}, None, {"global_view": g, "tiles": t, "grid": torch.tensor(grid, dtype=torch.int64)})


for _img, _mode, _mx in PREPROCESS_CASES:
    case(f"image_preprocess_{os.path.splitext(_img)[0]}_{_mode}_max{_mx}")(
        lambda cx, i=_img, mo=_mode, mx=_mx: _preprocess(cx, i, mo, mx))


@torch.no_grad()
def write_all(outdir, only=None):
    t0 = time.time()
    cx = Ctx(outdir)
    print(f"  tiny-ckpt + images ({time.time() - t0:.1f}s)", flush=True)
    return run_cases(CASES, cx, only, log=lambda m: print(m, flush=True))

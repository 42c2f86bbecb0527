"""Synthetic printed-text OCR data (issue 14): text rendered with Pillow and Debian's fonts.

Fonts: DejaVu, Liberation, FreeFont (serif, sans, mono; regular, bold, italic, bold italic); words:
Debian's `wamerican`; generated tokens (numbers, prices, percentages, dates, times, codes,
punctuation). Levels (`text_sample`): 0 = 1-3 short words or tokens, 1 = a line of 3-8 words,
2 = a 40-60 character line, 3 = a 2-4 line paragraph, 4 = a two-column table. Images (generator
version 2) are the text's own extent plus margins, any aspect ratio: the `tiny` view (model-spec
§3) stretches them to 512x512, so the text fills the view. Version 1 drew on 512x512 pages
(canvas="square"), where a word covered a few of the 64 image tokens and two demo models trained
on it never read.
Table text (level 4): one line per row, the two cells joined by " | ", no outer bars, no rule row
("Item | Price\nApple pie | $3.50"); the image draws aligned columns with or without rules.
`Split` holds out whole font files (~20 %, every family keeps files in training) and ~10 % of the
words (by a hash of the lower-cased word); `heldout_set` draws only from those. Deterministic in
the `random.Random` passed. The texts come from synth_text.py. CLI: python -m dsocr_ref.synth heldout OUT_DIR [--n 200] |
preview OUT.png | assets DST_DIR.
"""
import argparse
import functools
import hashlib
import io
import json
import math
import os
import random
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from .synth_text import MONTHS, TABLE_HEADS, TOKEN_KINDS, text_sample, token  # noqa: F401 (synth's API)
from .synth_text import _wrap

GENERATOR_VERSION = "2"  # 2: fit canvases (1: 512x512 pages)
FIT_MAX_SIDE = 1400  # a fit canvas's ink is at most this wide or tall (px)
HELDOUT_SEED = 20261206
FONT_DIRS = ["/usr/share/fonts"]
WORD_FILES = ["/usr/share/dict/american-english", "/usr/share/dict/words"]
_font = functools.lru_cache(maxsize=256)(ImageFont.truetype)  # (path, size) -> FreeTypeFont

# family -> file-name stems by style (regular, bold, italic/oblique, bold italic)
_STYLES = {"dv": ("", "-Bold", "-Oblique", "-BoldOblique"), "dvi": ("", "-Bold", "-Italic", "-BoldItalic"),
           "lib": ("-Regular", "-Bold", "-Italic", "-BoldItalic"), "free": ("", "Bold", "Oblique", "BoldOblique"),
           "freei": ("", "Bold", "Italic", "BoldItalic")}
FAMILIES = {fam: [stem + s for s in _STYLES[st]] for fam, stem, st in [
    ("DejaVu Sans", "DejaVuSans", "dv"), ("DejaVu Serif", "DejaVuSerif", "dvi"),
    ("DejaVu Sans Mono", "DejaVuSansMono", "dv"), ("Liberation Sans", "LiberationSans", "lib"),
    ("Liberation Serif", "LiberationSerif", "lib"), ("Liberation Mono", "LiberationMono", "lib"),
    ("FreeSans", "FreeSans", "free"), ("FreeSerif", "FreeSerif", "freei"), ("FreeMono", "FreeMono", "free")]}
FONT_EXT = (".ttf", ".otf")  # Fedora ships FreeFont as .otf

# level -> (font size range in px, smallest size when shrinking to fit)
SIZES = {0: ((28, 56), 20), 1: ((22, 44), 16), 2: ((15, 28), 13), 3: ((15, 26), 13), 4: ((16, 28), 13)}
HELDOUT_LEVELS = [1, 2, 0, 1, 2, 3, 1, 2, 4, 3]  # held-out level of sample i: [i % 10]


# ---- fonts and words ----

def find_fonts(dirs=None):
    """Font family -> existing font paths (regular, bold, italic, bold italic order) under dirs."""
    found = {}
    for d in dirs if dirs is not None else FONT_DIRS:
        for root, subdirs, files in os.walk(d):
            subdirs.sort()
            for f in sorted(files):
                stem, ext = os.path.splitext(f)
                if ext.lower() in FONT_EXT and stem not in found:
                    found[stem] = os.path.join(root, f)
    return {fam: ps for fam, stems in FAMILIES.items() if (ps := [found[s] for s in stems if s in found])}


def _clean_words(lines):
    seen, out = set(), []
    for w in lines:
        w = w.strip()
        if w and w.isascii() and w.isalpha() and w not in seen:  # drops possessives ("'s") too
            seen.add(w)
            out.append(w)
    return out


def load_words(path=None):
    """Debian's word list (file order), ASCII letters only, possessives dropped, case kept."""
    paths = [path] if path else WORD_FILES
    for p in paths:
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                return _clean_words(f)
    raise FileNotFoundError("no word list (install Debian's wamerican, or pass a path): %s" % paths)


def _stable_hash(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class Split:
    """Deterministic train / held-out partition of font files and words."""

    def __init__(self, fonts, words, seed=1234, font_fraction=0.2, word_fraction=0.1):
        fams = sorted(fonts)
        n_files = sum(len(fonts[f]) for f in fams)
        rng = random.Random(seed)
        order = fams[:]
        rng.shuffle(order)
        held = set()
        k, i = round(font_fraction * n_files), 0
        while len(held) < k and i < 4 * len(order):
            fam = order[i % len(order)]
            i += 1
            cand = [p for p in fonts[fam][1:] if p not in held]  # never the regular face
            if cand and len(fonts[fam]) - sum(p in held for p in fonts[fam]) > 1:
                held.add(rng.choice(cand))
        allf = [p for f in fams for p in fonts[f]]
        self.train_fonts = [p for p in allf if p not in held]
        self.heldout_fonts = [p for p in allf if p in held]
        cut = int(word_fraction * 1000)
        is_held = [_stable_hash("%d:%s" % (seed, w.lower())) % 1000 < cut for w in words]
        self.train_words = [w for w, h in zip(words, is_held) if not h]
        self.heldout_words = [w for w, h in zip(words, is_held) if h]


# ---- rendering ----

_luma = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731


def _colours(rng):
    """(paper, ink) with a luminance difference of at least 130."""
    while True:
        if rng.random() < 0.85:
            base, dark = rng.randint(200, 255), rng.choice([80, 80, 130])
            paper = tuple(min(255, base + rng.randint(-12, 12)) for _ in range(3))
            ink = tuple(rng.randint(0, dark) for _ in range(3))
        else:  # light ink on dark paper
            paper = tuple(rng.randint(0, 70) for _ in range(3))
            ink = tuple(rng.randint(200, 255) for _ in range(3))
        if abs(_luma(paper) - _luma(ink)) >= 130:
            return paper, ink


def _table_mask(font, rows, spacing, rng_style):
    """Draws a two-column table into an "L" mask; rng_style = (rule style, right-align flag)."""
    style, ralign = rng_style
    asc, desc = font.getmetrics()
    row_h = asc + desc + spacing
    pad = max(4, row_h // 4)
    wl = max(font.getlength(r[0]) for r in rows)
    wr = max(font.getlength(r[1]) for r in rows)
    gap = max(3 * pad, int(font.size * 1.2))
    w, h = int(wl + wr + gap + 2 * pad) + 2, int(row_h * len(rows) + 2 * pad) + 2
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    xr = pad + wl + gap
    lw = max(1, font.size // 14)
    for i, (a, b) in enumerate(rows):
        y = pad + i * row_h + spacing // 2
        d.text((pad, y), a, font=font, fill=255)
        d.text((xr + (wr - font.getlength(b) if ralign else 0), y), b, font=font, fill=255)
        if style in ("grid", "head") and (style == "grid" or i == 0) and i < len(rows) - 1:
            d.line([(0, pad + (i + 1) * row_h), (w - 1, pad + (i + 1) * row_h)], fill=255, width=lw)
    if style in ("grid", "vrule"):
        d.line([(pad + wl + gap // 2, 0), (pad + wl + gap // 2, h - 1)], fill=255, width=lw)
    if style == "grid":
        d.rectangle([0, 0, w - 1, h - 1], outline=255, width=lw)
    return mask


def _text_mask(font, lines, spacing, align):
    text = "\n".join(lines)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), text, font=font, spacing=spacing, align=align)
    x0, y0, x1, y1 = math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3])
    mask = Image.new("L", (x1 - x0 + 4, y1 - y0 + 4), 0)
    ImageDraw.Draw(mask).multiline_text((2 - x0, 2 - y0), text, font=font, fill=255,
                                        spacing=spacing, align=align)
    return mask


def _layout(rng, level, text, font_path, avail):
    """Fits the text inside avail x avail: shrinks the font, then wraps. -> (mask, text, size)."""
    (lo, hi), smallest = SIZES[level]
    size = rng.randint(lo, hi)
    spacing_f = rng.uniform(0.15, 0.6)
    angle = rng.uniform(-2, 2) if rng.random() < 0.5 else 0.0
    align = rng.choice(["left", "left", "left", "center"]) if level < 4 else "left"
    style = (rng.choice(["none", "vrule", "grid", "head"]), rng.random() < 0.5)
    lines = text.split("\n")
    while True:
        font = _font(font_path, size)
        spacing = int(round(spacing_f * size))
        if level == 4:
            mask = _table_mask(font, [ln.split(" | ") for ln in lines], spacing, style)
        else:
            mask = _text_mask(font, lines, spacing, align)
        if angle:
            mask = mask.rotate(angle, resample=Image.BICUBIC, expand=True)
        mask = mask.crop(mask.getbbox())
        need = max(mask.size)
        if need <= avail:
            return mask, "\n".join(lines), size
        if size > smallest:
            size = max(smallest, min(size - 1, int(size * avail / need)))
        elif level < 4 and any(" " in ln for ln in lines):
            width = avail * math.cos(math.radians(2)) - 8
            wrapped = [w for ln in lines for w in _wrap(ln.split(" "), width, font.getlength)]
            if wrapped == lines:
                raise ValueError("cannot fit %r" % text)
            lines = wrapped
        else:
            raise ValueError("cannot fit %r" % text)


def _augment(rng, img):
    if rng.random() < 0.35:  # gaussian noise, the same on the three channels
        nrng = np.random.default_rng(rng.getrandbits(32))
        noise = nrng.standard_normal(img.size[::-1], dtype=np.float32) * rng.uniform(2, 12) + 0.5
        a = np.asarray(img, dtype=np.float32) + noise[..., None]
        img = Image.fromarray(np.clip(a, 0, 255, out=a).astype(np.uint8))
    if rng.random() < 0.5:
        img.save(buf := io.BytesIO(), format="JPEG", quality=rng.randint(40, 95))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _fit_margins(rng, fsize, mask_size):
    """(left, top, right, bottom) around the ink of a fit-canvas sample: 0.2-1.0 font sizes each, and
    now and then one side much wider (up to half the ink's extent), so that the text is not always
    centred once stretched."""
    m = [int(fsize * rng.uniform(0.2, 1.0)) + 2 for _ in range(4)]
    if rng.random() < 0.25:
        side = rng.randrange(4)
        m[side] += int(rng.uniform(0.1, 0.5) * mask_size[side % 2])
    return m


def render_sample_info(rng, level, fonts, words, size=512, augment=True, text=None, canvas="fit"):
    """render_sample, plus a dict: level, font (file name), font_size, bbox (of the ink), paper.
    text: draw this instead of a text_sample of the level (dsocr_ref.reading_probe).
    canvas "fit": the image is the text's own extent plus margins, any aspect ratio (a cropped
    line, paragraph or table, as a user would pass one); the `tiny` view stretches it to 512x512,
    so the text fills the view whatever its length. "square": a size x size page with the text
    somewhere on it (generator version 1)."""
    if canvas not in ("fit", "square"):
        raise ValueError("canvas must be 'fit' or 'square', got %r" % (canvas,))
    text = text_sample(rng, level, words) if text is None else text
    font_path = rng.choice(fonts)
    # drawn for both canvases, so that a fit sample's text, font and layout come from the same draws
    # as the square sample of the same seed (the held-out labels are those of version 1)
    margin = rng.randint(max(4, size // 64), max(8, size // 16))
    avail = FIT_MAX_SIDE if canvas == "fit" else size - 2 * margin - 6
    mask, text, fsize = _layout(rng, level, text, font_path, avail)
    if augment and rng.random() < 0.3:  # blur the ink only (the paper is flat or a soft gradient)
        radius = rng.uniform(0.3, min(1.2, fsize / 24))
        mask = ImageOps.expand(mask, 3).filter(ImageFilter.GaussianBlur(radius))
    paper, ink = _colours(rng)
    if canvas == "fit":
        ml, mt, mr, mb = _fit_margins(rng, fsize, mask.size)
        w, h = mask.size[0] + ml + mr, mask.size[1] + mt + mb
    else:
        w = h = size
    img = Image.new("RGB", (w, h), paper)
    if rng.random() < 0.2:  # a soft paper gradient
        g = Image.linear_gradient("L").resize((w, h)).rotate(rng.choice([0, 90, 180, 270]))
        img = Image.composite(Image.new("RGB", (w, h), tuple(max(0, min(255, c + (
            -20 if _luma(paper) > 128 else 20))) for c in paper)), img, g.point(lambda v: v // 3))
    if canvas == "fit":
        x, y = ml, mt
    else:
        x = rng.randint(margin, size - margin - mask.size[0])
        y = rng.randint(margin, size - margin - mask.size[1])
    img.paste(Image.new("RGB", mask.size, ink), (x, y), mask)
    if augment:
        img = _augment(rng, img)
    info = {"level": level, "font": os.path.basename(font_path), "font_size": fsize,
            "bbox": (x, y, x + mask.size[0], y + mask.size[1]), "paper": paper, "ink": ink}
    return img, text, info


def render_sample(rng, level, fonts, words, size=512, text=None, canvas="fit"):
    """One (RGB image, text exactly as drawn) sample at a curriculum level (render_sample_info)."""
    img, text, _ = render_sample_info(rng, level, fonts, words, size, text=text, canvas=canvas)
    return img, text


# ---- held-out set, preview, assets ----

def default_split():
    fonts = find_fonts()
    if not fonts:
        raise FileNotFoundError("no fonts under %s (install fonts-dejavu-core fonts-liberation "
                                "fonts-freefont-ttf)" % FONT_DIRS)
    return Split(fonts, load_words())


def heldout_set(n=200, seed=HELDOUT_SEED, split=None):
    """n (image, text, {level, font, font_size, seed}) from held-out fonts and words only.

    Sample i has level HELDOUT_LEVELS[i % 10] and its own seed, so a prefix of a larger set is
    the smaller set."""
    split = split or default_split()
    out = []
    for i in range(n):
        s = _stable_hash("heldout:%d:%d" % (seed, i)) % (1 << 62)
        level = HELDOUT_LEVELS[i % len(HELDOUT_LEVELS)]
        img, text, info = render_sample_info(random.Random(s), level, split.heldout_fonts,
                                             split.heldout_words)
        out.append((img, text, {k: info[k] for k in ("level", "font", "font_size")} | {"seed": s}))
    return out


def write_heldout(out_dir, n=200, seed=HELDOUT_SEED, split=None):
    """Writes out_dir/NNN.png and out_dir/labels.jsonl ({file, text, level, font, seed})."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "labels.jsonl"), "w", encoding="utf-8") as f:
        for i, (img, text, meta) in enumerate(heldout_set(n, seed, split)):
            img.save(os.path.join(out_dir, name := "%03d.png" % i))
            f.write(json.dumps({"file": name, "text": text, "level": meta["level"],
                                "font": meta["font"], "seed": meta["seed"]}, ensure_ascii=False) + "\n")


def preview(out_png, seed=1, split=None, n=12, cols=4):
    """A contact sheet of n training samples over all levels, each stretched to 512x512 as the tiny view
    stretches it, the text printed under each."""
    split = split or default_split()
    rng = random.Random(seed)
    cell, cap = 512, 110
    rows = (n + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + cap)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    capfont = _font(split.train_fonts[0], 11)
    for i in range(n):
        level = i % 5
        img, text, info = render_sample_info(rng, level, split.train_fonts, split.train_words)
        x, y = (i % cols) * cell, (i // cols) * (cell + cap)
        sheet.paste(img.resize((cell, cell), Image.BICUBIC), (x, y))  # as the tiny view sees it
        label = "L%d %s %dpx %dx%d\n%s" % (level, info["font"], info["font_size"], *img.size, text)
        d.multiline_text((x + 4, y + cell + 2), label, font=capfont, fill=(0, 0, 160), spacing=2)
    sheet.save(out_png)


def copy_assets(dst_dir, fonts=None):
    """Copies the fonts (train and held-out) and the clean word list (words.txt); -> bytes."""
    fonts = fonts or find_fonts()
    os.makedirs(dst_dir, exist_ok=True)
    total = 0
    for paths in fonts.values():
        for p in paths:
            q = os.path.join(dst_dir, os.path.basename(p))
            if os.path.abspath(p) != os.path.abspath(q):
                shutil.copyfile(p, q)
            total += os.path.getsize(q)
    words_path = os.path.join(dst_dir, "words.txt")
    words = load_words()
    with open(words_path, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    return total + os.path.getsize(words_path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dsocr_ref.synth", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, pos, hlp in (("heldout", "out_dir", "write the held-out set (NNN.png, labels.jsonl)"),
                           ("preview", "out_png", "a contact sheet of 12 training samples"),
                           ("assets", "dst_dir", "copy the fonts and words.txt into a folder")):
        c = sub.add_parser(name, help=hlp)
        c.add_argument(pos)
        c.add_argument("--seed", type=int, default=HELDOUT_SEED if name == "heldout" else 1)
        c.add_argument("--n", type=int, default=200 if name == "heldout" else 12)
    args = ap.parse_args(argv)
    if args.cmd == "heldout":
        write_heldout(args.out_dir, args.n, args.seed)
    elif args.cmd == "preview":
        preview(args.out_png, args.seed, n=args.n)
    else:
        print("copied %.1f MB to %s" % (copy_assets(args.dst_dir) / 1e6, args.dst_dir))


if __name__ == "__main__":
    main()

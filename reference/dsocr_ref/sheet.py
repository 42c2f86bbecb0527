"""A picture of held-out images with what an OCR read in each (issue 14's contact sheet).

    python -m dsocr_ref.sheet LABELS.jsonl PAGES.jsonl OUT.png [--per-level 2] [--cols 2]

LABELS.jsonl: synth.write_heldout's labels (file, text, level); PAGES.jsonl: `dsocr ocr --format
json` output (source, text) for the images beside it. The first --per-level images of each level,
each drawn as it is (scaled to the cell's width), with the label and the reading under it; a
reading that differs from the label is drawn in red.
"""
import argparse
import json
import os
import textwrap

from PIL import Image, ImageDraw

from . import eval_cer, synth

CELL_W, IMG_H, TEXT_H = 560, 150, 104
WRAP = 74  # characters per caption line (12 px DejaVu Sans Mono in a 560 px cell)


def _fit(img, w, h):
    s = min(w / img.width, h / img.height, 1.5)
    return img.resize((max(1, int(img.width * s)), max(1, int(img.height * s))), Image.BICUBIC)


def _caption(text):
    """At most three lines of WRAP characters, the text's own lines joined with " / "."""
    return "\n".join(textwrap.wrap(text.replace("\n", " / "), WRAP)[:3])


def pick(labels, per_level):
    """The first per_level labels of each level, in level order."""
    out = []
    for level in sorted({r["level"] for r in labels}):
        out += [r for r in labels if r["level"] == level][:per_level]
    return out


def sheet(labels_path, pages_path, out_png, per_level=2, cols=2):
    with open(labels_path, encoding="utf-8") as f:
        labels = [json.loads(line) for line in f if line.strip()]
    pages = eval_cer.read_pages(pages_path)
    rows = pick(labels, per_level)
    folder = os.path.dirname(os.path.abspath(labels_path))
    n_rows = (len(rows) + cols - 1) // cols
    out = Image.new("RGB", (cols * CELL_W, n_rows * (IMG_H + TEXT_H)), (255, 255, 255))
    d = ImageDraw.Draw(out)
    fonts = synth.find_fonts()
    font = synth._font(next(p for p in fonts.get("DejaVu Sans Mono", []) + sum(fonts.values(), [])), 12)
    for i, r in enumerate(rows):
        x, y = (i % cols) * CELL_W, (i // cols) * (IMG_H + TEXT_H)
        img = _fit(Image.open(os.path.join(folder, r["file"])).convert("RGB"), CELL_W - 16, IMG_H - 12)
        out.paste(img, (x + 8, y + 6))
        got = pages.get(r["file"]) or ""
        d.multiline_text((x + 8, y + IMG_H - 4), _caption("label: " + r["text"]), font=font, fill=(0, 0, 0))
        d.multiline_text((x + 8, y + IMG_H + 46), _caption("dsocr: " + got), font=font,
                         fill=(0, 110, 0) if got.strip() == r["text"].strip() else (190, 0, 0))
    out.save(out_png)
    return len(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels")
    ap.add_argument("pages")
    ap.add_argument("out_png")
    ap.add_argument("--per-level", type=int, default=2)
    ap.add_argument("--cols", type=int, default=2)
    a = ap.parse_args(argv)
    print("%d images -> %s" % (sheet(a.labels, a.pages, a.out_png, a.per_level, a.cols), a.out_png))


if __name__ == "__main__":
    main()

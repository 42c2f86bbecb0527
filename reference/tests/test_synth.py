"""dsocr_ref.synth, the synthetic OCR data generator (issue 14): fonts and words found, the split
disjoint, rendering deterministic and inside the image, generated tokens present, the held-out set
reproducible and drawn from held-out fonts and words only, the assets copy self-sufficient."""
import hashlib
import json
import os
import random
import re

import numpy as np
import pytest
from PIL import Image

from dsocr_ref import synth

FONTS = synth.find_fonts()
HAVE_WORDS = any(os.path.exists(p) for p in synth.WORD_FILES)
pytestmark = pytest.mark.skipif(
    len(FONTS) < len(synth.FAMILIES) or not HAVE_WORDS,
    reason="fonts or word list absent: found families %s, word list %s (Debian: fonts-dejavu-core "
           "fonts-liberation fonts-freefont-ttf wamerican, installed by scripts/setup.sh)"
           % (sorted(FONTS), HAVE_WORDS))


@pytest.fixture(scope="module")
def split():
    return synth.Split(FONTS, synth.load_words())


@pytest.fixture(scope="module")
def heldout(split):
    return synth.heldout_set(200, split=split)


def digest(img, text=""):
    return hashlib.sha256(img.tobytes() + text.encode()).hexdigest()


def test_fonts_and_words():
    for fam, paths in FONTS.items():
        assert len(paths) == 4, (fam, paths)  # regular, bold, italic, bold italic on Debian
        assert all(os.path.isfile(p) for p in paths)
    words = synth.load_words()
    assert len(words) > 50000
    assert all(w.isascii() and w.isalpha() for w in words)
    assert not any(w.endswith("'s") for w in words) and len(set(words)) == len(words)
    assert "Apple" in words and "apple" in words  # case kept


def test_split_disjoint_and_deterministic(split):
    tr, ho = set(split.train_fonts), set(split.heldout_fonts)
    assert tr and ho and not tr & ho
    assert tr | ho == {p for ps in FONTS.values() for p in ps}
    assert 0.15 <= len(ho) / (len(tr) + len(ho)) <= 0.3
    for fam, paths in FONTS.items():
        assert set(paths) & tr, fam + " has no training file"
    trw, how = {w.lower() for w in split.train_words}, {w.lower() for w in split.heldout_words}
    assert not trw & how
    assert 0.08 <= len(split.heldout_words) / (len(split.train_words) + len(split.heldout_words)) <= 0.12
    again = synth.Split(FONTS, synth.load_words())
    assert again.heldout_fonts == split.heldout_fonts and again.heldout_words == split.heldout_words
    other = synth.Split(FONTS, synth.load_words(), seed=7)
    assert other.heldout_words != split.heldout_words


def test_text_levels(split):
    rng = random.Random(5)
    for _ in range(100):
        assert 1 <= len(synth.text_sample(rng, 0, split.train_words).split(" ")) <= 9
        assert "\n" not in synth.text_sample(rng, 1, split.train_words)
        assert 20 <= len(synth.text_sample(rng, 2, split.train_words)) <= 60
        assert 2 <= len(synth.text_sample(rng, 3, split.train_words).split("\n")) <= 4
        table = synth.text_sample(rng, 4, split.train_words).split("\n")
        assert 2 <= len(table) <= 4
        assert all(line.count(" | ") == 1 and "|" not in line.replace(" | ", "") for line in table)
    with pytest.raises(ValueError):
        synth.text_sample(rng, 5, split.train_words)


def test_generated_tokens_appear(split):
    rng = random.Random(11)
    text = "\n".join(synth.text_sample(rng, lvl, split.train_words) for lvl in (1, 2, 3, 4) * 100)
    patterns = {
        "integer": r"(?<![\d.,:/-])\d{1,5}(?![\d.,:/%])", "decimal": r"\d+\.\d+(?!%)",
        "dollar": r"\$\d[\d,]*\.\d\d", "euro": r"€\d+,\d\d|\d+,\d\d €", "percent": r"\d%",
        "iso date": r"\b(19|20)\d\d-\d\d-\d\d\b", "d/m/y": r"\b\d\d/\d\d/(19|20)\d\d\b",
        "month date": r"\b(January|February|March|April|May|June|July|August|September|October|"
                      r"November|December) \d{1,2}, \d{4}\b",
        "24h time": r"\b\d\d:\d\d\b", "12h time": r"\b\d{1,2}:\d\d (am|pm|AM|PM)\b",
        "hash code": r"#[A-Z]\d", "ID code": r"\bID-\d+", "comma": r"[a-z],", "period": r"[a-z]\.",
        "semicolon": r";", "colon": r"[a-z]:", "exclamation": r"!", "question": r"\?",
        "parentheses": r"\(\w+\)", "double quotes": r'"\w+"', "single quotes": r"'\w+'", "hyphen": r"\w-\w",
    }
    missing = [k for k, p in patterns.items() if not re.search(p, text)]
    assert not missing, missing


def test_render_deterministic(split):
    for level in range(5):
        a = [synth.render_sample(random.Random(100 + i), level, split.train_fonts, split.train_words)
             for i in range(8)]
        b = [synth.render_sample(random.Random(100 + i), level, split.train_fonts, split.train_words)
             for i in range(8)]
        assert [digest(i, t) for i, t in a] == [digest(i, t) for i, t in b]
        assert len({digest(i) for i, _ in a}) == 8  # and they vary
        for img, text in a:
            assert img.mode == "RGB" and text.strip() == text and text
            assert 16 <= min(img.size) and max(img.size) <= 2 * synth.FIT_MAX_SIDE, img.size
        sq = synth.render_sample(random.Random(100), level, split.train_fonts, split.train_words, canvas="square")
        assert sq[0].size == (512, 512)


def test_fit_canvas_is_the_text_plus_margins(split):
    rng = random.Random(7)
    for level in range(5):
        for _ in range(10):
            img, text, info = synth.render_sample_info(rng, level, split.train_fonts, split.train_words, augment=False)
            x0, y0, x1, y1 = info["bbox"]
            w, h = img.size
            # every margin at least 2 px and at most one font size plus half the ink's extent
            for m, ink in ((x0, x1 - x0), (y0, y1 - y0), (w - x1, x1 - x0), (h - y1, y1 - y0)):
                assert 2 <= m <= info["font_size"] + 3 + ink // 2, (m, img.size, info)
    with pytest.raises(ValueError, match="canvas"):
        synth.render_sample_info(rng, 0, split.train_fonts, split.train_words, canvas="round")


@pytest.mark.parametrize("level", range(5))
def test_text_fits_inside_image(split, level):
    rng = random.Random(1000 + level)
    fonts = split.train_fonts + split.heldout_fonts
    for _ in range(40):
        img, text, info = synth.render_sample_info(rng, level, fonts, split.train_words, augment=False)
        x0, y0, x1, y1 = info["bbox"]
        w, h = img.size
        assert 0 < x0 < x1 < w and 0 < y0 < y1 < h, info
        # the ink found in the pixels lies inside that box, away from the image's edges
        a = np.asarray(img, dtype=np.int16)
        ink = np.abs(a - np.array(info["paper"], dtype=np.int16)).max(axis=2) > 40
        ys, xs = np.nonzero(ink)
        assert len(xs) > 20, (text, info)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1, (text, info)
        assert xs.min() >= 2 and ys.min() >= 2 and xs.max() <= w - 3 and ys.max() <= h - 3
        lines = text.split("\n")
        assert all(line.strip() == line and line for line in lines), repr(text)
        if level <= 2:
            small = synth.SIZES[level][1]
            assert info["font_size"] >= small, info
        else:
            assert info["font_size"] >= 13, info


def test_heldout_set(split, heldout):
    assert len(heldout) == 200
    levels = [m["level"] for _, _, m in heldout]
    assert {lvl: levels.count(lvl) for lvl in range(5)} == {0: 20, 1: 60, 2: 60, 3: 40, 4: 20}
    held_names = {os.path.basename(p) for p in split.heldout_fonts}
    assert {m["font"] for _, _, m in heldout} <= held_names
    assert len({m["font"] for _, _, m in heldout}) == len(held_names)
    allowed = {w.lower() for w in split.heldout_words} | {"am", "pm", "id", "ref", "no"}
    allowed |= {m.lower() for m in synth.MONTHS} | {m[:3].lower() for m in synth.MONTHS}
    allowed |= {h.lower() for row in synth.TABLE_HEADS for h in row[:2]}
    for _, text, meta in heldout:
        for run in re.findall(r"[A-Za-z]+", text):
            code = run.isupper() and len(run) <= 2 or re.fullmatch(r"[A-Z]\d?[A-Z]?", run)
            assert run.lower() in allowed or code, (run, text, meta)
    # reproducible: a prefix of the set is the smaller set, pixel for pixel
    again = synth.heldout_set(4, split=split)
    assert [digest(i, t) for i, t, _ in again] == [digest(i, t) for i, t, _ in heldout[:4]]
    assert [m for _, _, m in again] == [m for _, _, m in heldout[:4]]


def test_heldout_labels_pinned(heldout):
    # The first labels pinned: if this fails the generator's output changed, so bump
    # synth.GENERATOR_VERSION and update the digest.
    labels = json.dumps([[t, m["font"], m["level"]] for _, t, m in heldout[:10]], ensure_ascii=False)
    assert synth.GENERATOR_VERSION == "2"
    assert hashlib.sha256(labels.encode()).hexdigest()[:16] == "2e2308a1caac4e34", labels


def test_write_heldout_and_cli(tmp_path, split, heldout):
    synth.main(["heldout", str(tmp_path / "h"), "--n", "3"])
    rows = [json.loads(line) for line in open(tmp_path / "h" / "labels.jsonl", encoding="utf-8")]
    assert [r["file"] for r in rows] == ["000.png", "001.png", "002.png"]
    for r, (img, text, meta) in zip(rows, heldout):
        assert r["text"] == text and r["level"] == meta["level"] and r["font"] == meta["font"]
        assert digest(Image.open(tmp_path / "h" / r["file"]).convert("RGB")) == digest(img)
    synth.main(["preview", str(tmp_path / "p.png"), "--n", "5"])
    assert Image.open(tmp_path / "p.png").size[0] == 4 * 512


def test_copy_assets(tmp_path, split):
    dst = tmp_path / "assets"
    size = synth.copy_assets(str(dst))
    assert size == sum(os.path.getsize(dst / f) for f in os.listdir(dst)) and size < 20e6
    fonts = synth.find_fonts([str(dst)])
    base = {f: [os.path.basename(p) for p in ps] for f, ps in FONTS.items()}
    assert {f: [os.path.basename(p) for p in ps] for f, ps in fonts.items()} == base
    words = synth.load_words(str(dst / "words.txt"))
    assert words == synth.load_words()
    copy = synth.Split(fonts, words)
    assert [os.path.basename(p) for p in copy.heldout_fonts] == \
        [os.path.basename(p) for p in split.heldout_fonts]
    img, text = synth.render_sample(random.Random(3), 2, copy.train_fonts, copy.train_words)
    ref = synth.render_sample(random.Random(3), 2, split.train_fonts, split.train_words)
    assert digest(img, text) == digest(*ref)

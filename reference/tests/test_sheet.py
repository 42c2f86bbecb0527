"""dsocr_ref.sheet: which held-out images go on the picture, and that it is drawn from the files."""
import json

import pytest
from PIL import Image

from dsocr_ref import sheet, synth

pytestmark = pytest.mark.skipif(not synth.find_fonts(), reason="fonts missing (scripts/setup.sh installs them)")


def test_pick_takes_the_first_of_each_level():
    labels = [{"file": "%d.png" % i, "level": lvl} for i, lvl in enumerate([1, 0, 1, 1, 0, 2])]
    assert [r["file"] for r in sheet.pick(labels, 2)] == ["1.png", "4.png", "0.png", "2.png", "5.png"]


def test_sheet_draws_each_image_with_its_reading(tmp_path):
    rows = [{"file": "a.png", "text": "hello", "level": 0}, {"file": "b.png", "text": "two\nlines", "level": 3}]
    for r, colour in zip(rows, [(255, 0, 0), (0, 0, 255)]):
        Image.new("RGB", (300, 60), colour).save(tmp_path / r["file"])
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pages = [{"source": str(tmp_path / "a.png"), "text": "hello"}, {"source": "/elsewhere/b.png", "text": "tvvo"}]
    (tmp_path / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages))
    n = sheet.sheet(str(tmp_path / "labels.jsonl"), str(tmp_path / "pages.jsonl"), str(tmp_path / "s.png"), cols=2)
    assert n == 2
    out = Image.open(tmp_path / "s.png").convert("RGB")
    assert out.size == (2 * sheet.CELL_W, sheet.IMG_H + sheet.TEXT_H)
    assert out.getpixel((20, 20)) == (255, 0, 0) and out.getpixel((sheet.CELL_W + 20, 20)) == (0, 0, 255)
    # the exact reading is drawn in green, the wrong one in red
    px = list(out.crop((0, sheet.IMG_H + 40, sheet.CELL_W, sheet.IMG_H + sheet.TEXT_H)).getdata())
    assert any(p[1] > 80 and p[0] < 40 for p in px)
    px = list(out.crop((sheet.CELL_W, sheet.IMG_H + 40, 2 * sheet.CELL_W, sheet.IMG_H + sheet.TEXT_H)).getdata())
    assert any(p[0] > 150 and p[1] < 40 for p in px)

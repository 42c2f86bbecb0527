"""dsocr_ref.reading_probe on the CPU: two steps on two-image batches; the report names distinct
training words and chance; the blank control really is blank; each drawn image shows its word's
ink (a non-blank image) and the target is the word drawn."""
import json
import os
import random

import numpy as np
import pytest

from dsocr_ref import reading_probe, small_tokenizer, synth

pytestmark = pytest.mark.skipif(not synth.find_fonts() or not os.path.exists("/usr/share/dict/american-english"),
                                reason="fonts or word list missing (scripts/setup.sh installs them)")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    synth.copy_assets(str(root / "assets"))
    tok = small_tokenizer.train_small_tokenizer(small_tokenizer.default_corpus(3000, 0), vocab_size=300)
    small_tokenizer.write(tok, str(root / "tok"))
    return root


def test_probe_runs_and_reports(dirs):
    out = dirs / "probe.jsonl"
    reports = reading_probe.main(["--assets", str(dirs / "assets"), "--tokenizer", str(dirs / "tok"), "--words", "5",
                                  "--steps", "2", "--batch", "2", "--every", "1", "--eval", "3", "--device", "cpu",
                                  "--out", str(out)])
    head, rows = reports[0], reports[1:]
    assert len(set(head["words"])) == 5 and head["chance"] == pytest.approx(0.2) and head["blank"] is False
    assert head["prior"] in (0.2, 0.4, 0.6, 0.8, 1.0)
    for r in rows:  # three images per report: a multiple of 1/3
        assert r["first_token_acc"] * 3 == pytest.approx(round(r["first_token_acc"] * 3))
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert 0.0 <= r["first_token_acc"] <= 1.0 and r["loss"] > 0
    assert [json.loads(x) for x in open(out)] == json.loads(json.dumps(reports))


class _Tok:
    """A tokenizer whose first token of a word is its first letter."""

    def encode(self, w):
        class E:
            ids = [ord(c) for c in w]
        return E()


def test_first_token_prior():
    assert reading_probe.first_token_prior(_Tok(), ["sun", "sea", "sky", "moon", "tree"]) == pytest.approx(0.6)
    assert reading_probe.first_token_prior(_Tok(), ["a", "b", "c", "d"]) == pytest.approx(0.25)


def test_draw_words_and_blank_control(dirs):
    split = synth.Split(synth.find_fonts([str(dirs / "assets")]), synth.load_words(str(dirs / "assets" / "words.txt")))
    words = reading_probe.pick_words(split, 4, 1)
    assert words == reading_probe.pick_words(split, 4, 1) and all(w in split.train_words for w in words)
    drawn = reading_probe.draw(random.Random(3), split, words, 6, blank=False)
    assert all(w in words for _, w in drawn)
    assert all(np.ptp(px.numpy().reshape(3, -1), axis=1).max() > 60 for px, _ in drawn)  # ink on paper
    blank = reading_probe.draw(random.Random(3), split, words, 6, blank=True)
    assert [w for _, w in blank] == [w for _, w in drawn]
    assert all(np.ptp(px.numpy().reshape(3, -1), axis=1).max() == 0 for px, _ in blank)  # one colour
    with pytest.raises(ValueError, match="asked for"):
        reading_probe.pick_words(split, 10**6, 1)

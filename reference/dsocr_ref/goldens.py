"""Writes every golden case file: python -m dsocr_ref.goldens --out tests/goldens

Layout under --out:
  ops/<case>.h5        op cases (dsocr_ref.goldens_ops)
  model/<case>.h5      layer and model cases on the tiny checkpoint (dsocr_ref.goldens_model)
  tiny-ckpt/           the tiny random checkpoint in the official layout (dsocr_ref.checkpoint)
  images/              the test images made by the script (PNG/JPEG), inputs of image_preprocess
Deterministic: fixed seeds, CPU, single-threaded torch.
"""
import argparse
import os
import sys
import time

import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (e.g. tests/goldens)")
    ap.add_argument("--only", nargs="*", help="write only cases whose name contains one of these")
    ap.add_argument("--skip-ops", action="store_true")
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # determinism of reductions across machines
    t0 = time.time()
    n = 0
    if not args.skip_ops:
        from . import goldens_ops
        print("op cases:", flush=True)
        n += len(goldens_ops.write_all(os.path.join(args.out, "ops"), args.only))
    if not args.skip_model:
        from . import goldens_model
        print("model cases:", flush=True)
        n += len(goldens_model.write_all(args.out, args.only))
    print(f"wrote {n} golden files under {args.out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writes every golden case file: python -m dsocr_ref.goldens --out tests/goldens

Layout under --out:
  ops/<case>.h5        op cases (dsocr_ref.goldens_ops)
  model/<case>.h5      layer and model cases on the tiny checkpoint (dsocr_ref.goldens_model)
  tiny-ckpt/           the tiny random checkpoint in the official layout (dsocr_ref.checkpoint)
  images/              the test images made by the script (PNG/JPEG), inputs of image_preprocess
Deterministic: fixed seeds, CPU, single-threaded torch. The committed files were written with
Debian's torch 1.13.1 dispatching to its AVX2 kernels. torch.randn (float32, >= 16 values) takes a
vectorised Box-Muller path there, and the AVX512 dispatch takes the same path (checked bit for
bit); the DEFAULT dispatch (a CPU without AVX2, or ATEN_CPU_CAPABILITY=default) takes a scalar
one that differs in the last bits, so every random input and weight, and the tiny checkpoint,
come out slightly different there: a warning says so.
"""
import argparse
import os
import sys
import time

import torch


def cpu_capability():
    """ATen's kernel dispatch level ("AVX2", "AVX512", "NO AVX" = DEFAULT, ...)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (e.g. tests/goldens)")
    ap.add_argument("--only", nargs="*", help="write only cases whose name contains one of these")
    ap.add_argument("--skip-ops", action="store_true")
    ap.add_argument("--skip-model", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # determinism of reductions across machines
    cap = cpu_capability()
    print(f"torch {torch.__version__}, CPU capability {cap}", flush=True)
    if cap not in ("AVX2", "AVX512"):
        print(f"warning: CPU capability {cap}: torch.randn differs from the AVX2/AVX512 kernels the "
              "committed goldens were written with; the files will not reproduce them", flush=True)
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
        from . import goldens_ocr2
        print("DeepSeek-OCR-2 cases:", flush=True)
        wanted = [c for c in goldens_ocr2.COMMITTED if not args.only or any(o in c for o in args.only)]
        if wanted:
            n += len(goldens_ocr2.write_all(args.out, wanted, log=lambda s: print(s, flush=True)))
    print(f"wrote {n} golden files under {args.out} in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A corpus of page images fanned out to several `dsocr serve` workers with Ray.

Each Ray actor starts one `dsocr serve --port 0` (its own process, model and device) and sends it
pages with the official openai client; Ray's ActorPool hands every page to the next free worker,
so a machine with several GPUs, or a Ray cluster of several machines, reads a corpus in parallel.
Each page's answer is written to OUT/KEY.json (KEY the page's path with other bytes than
[A-Za-z0-9._-] as %XX, as `dsocr ocr --results` names them): written whole (a temporary name,
then a rename), and a page whose file is there is skipped, so running the same command again
after a crash does only the pages not yet done. PDFs are not split here: run `dsocr ocr --shard
I/N --results DIR` on them (one process per shard), or render their pages to images first.

usage: ray_corpus.py --dsocr BIN --model M --out DIR [--workers N] [--device SPEC[,SPEC...]]
                     [--prompt TEXT] [--max-tokens N] [--address ADDR] [--serve-arg ARG ...] INPUT...
  INPUT        PNG or JPEG files, or folders of them (not recursive)
  --workers    dsocr serve processes (default 2); --device gives each its device, in turn
  --address    an existing Ray cluster (e.g. auto); default: a local one with --workers CPUs
  --serve-arg  passed to every dsocr serve (e.g. --serve-arg=--mode --serve-arg=tiny)

Prints one line per page (worker, tokens) and a summary; exit status 1 when a page failed.
Needs `pip install ray openai` (pinned in reference/requirements.txt).
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time

import ray
from ray.util import ActorPool


@ray.remote
class DsocrWorker:
    """One `dsocr serve` process and an openai client talking to it."""

    def __init__(self, name, dsocr, model, device, serve_args):
        from openai import OpenAI
        cmd = [dsocr, "serve", "--model", model, "--port", "0", "--quiet"] + serve_args
        if device:
            cmd += ["--device", device]
        self.name = name
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url, seen = None, []
        deadline = time.time() + 600  # the first start on a device compiles its kernels
        while url is None and time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("listening on "):
                url = line.split()[-1]
        if url is None:
            self.proc.kill()
            raise RuntimeError(f"{name}: dsocr serve did not start: {''.join(seen[-5:])}")
        self.client = OpenAI(base_url=url + "/v1", api_key="none")
        self.model = model

    def ocr(self, path, full_path, prompt, max_tokens):
        try:
            with open(full_path, "rb") as f:
                data = base64.b64encode(f.read()).decode()
            mime = "image/png" if path.lower().endswith(".png") else "image/jpeg"
            r = self.client.chat.completions.create(
                model=self.model, max_tokens=max_tokens,
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}]}])
        except Exception as e:  # the page's own failure (unreadable file, a refusal): reported, not fatal
            return {"source": path, "worker": self.name, "error": f"{type(e).__name__}: {e}"}
        return {"source": path, "worker": self.name, "text": r.choices[0].message.content,
                "finish_reason": r.choices[0].finish_reason, "completion_tokens": r.usage.completion_tokens,
                "prompt_tokens": r.usage.prompt_tokens}

    def stop(self):
        self.proc.terminate()  # dsocr serve finishes what it runs and exits
        return self.proc.wait(timeout=60)


def result_path(out, source):
    key = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "".join(f"%{b:02X}" for b in c.encode())
                  for c in source)
    return os.path.join(out, key + ".json")


def pages_of(inputs):
    pages = []
    for p in inputs:
        if os.path.isdir(p):
            pages += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith((".png", ".jpg", ".jpeg")))
        elif p.lower().endswith((".png", ".jpg", ".jpeg")):
            pages.append(p)
        else:
            print(f"skipped {p}: not a PNG or JPEG (PDFs: dsocr ocr --shard)", file=sys.stderr)
    return pages


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--dsocr", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="")
    ap.add_argument("--prompt", default="<image>\nFree OCR.")
    ap.add_argument("--max-tokens", type=int, default=8192)
    ap.add_argument("--address", default=None)
    ap.add_argument("--serve-arg", action="append", default=[])
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    pages = pages_of(a.inputs)
    todo = [p for p in pages if not os.path.exists(result_path(a.out, p))]
    print(f"{len(pages)} pages, {len(pages) - len(todo)} already done, {len(todo)} to run on {a.workers} workers")
    if not todo:
        return 0
    if a.address:
        ray.init(address=a.address, log_to_driver=False)
    else:
        ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
    devices = a.device.split(",") if a.device else [""]
    model = os.path.abspath(a.model) if os.path.isdir(a.model) else a.model  # a folder, or a repo id
    workers = [DsocrWorker.remote(f"worker{i}", os.path.abspath(a.dsocr), model, devices[i % len(devices)],
                                  a.serve_arg) for i in range(a.workers)]
    pool = ActorPool(workers)
    for p in todo:
        pool.submit(lambda w, page: w.ocr.remote(page, os.path.abspath(page), a.prompt, a.max_tokens), p)
    failed = 0
    while pool.has_next():
        res = pool.get_next_unordered()
        if "error" in res:
            failed += 1
            print(f"{res['source']}: {res['worker']}: error: {res['error']}")
            continue
        final = result_path(a.out, res["source"])
        with open(final + ".tmp", "w") as f:
            json.dump(res, f, ensure_ascii=False)
            f.write("\n")
        os.replace(final + ".tmp", final)
        print(f"{res['source']}: {res['worker']}: {res['completion_tokens']} tokens ({res['finish_reason']})")
    print(f"{len(todo) - failed} pages written to {a.out}, {failed} failed")
    ray.get([w.stop.remote() for w in workers])
    ray.shutdown()
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Long run: many pages through one dsocr process, memory flat, output as per-file runs.

Renders N images (PNG and JPEG, DejaVu text of varying size, colour and layout) and a P-page PDF,
runs them all through ONE `dsocr ocr --format json` process (the PDF first), and checks:
  - host memory (the process's resident set) and device memory (live and held by the buffer
    pool, as dsocr reports them per page) are flat after a warm-up: the slope over the pages after
    the warm-up and the spread (max - min) are reported, and must stay under the limits below;
  - every page's generated ids equal those of a separate process run on that file alone (every
    image; the PDF alone in its own process, and a sample of its pages with --pages K);
  - a second whole run is byte-identical to the first (text and ids; timings excluded).
Writes OUT/long_run.json (per-page records and the summary), OUT/long_run.png (memory against
page) and prints the summary. Exit status 1 when any check fails.

  python3 bench/long_run.py --dsocr build/dsocr --device pocl --out bench/results/DATE-long-run
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORDS = ("invoice total amount date page section table figure report summary account balance "
         "payment order number customer address street city country phone email value price "
         "quantity item description tax net gross due paid receipt reference note annex").split()


def fonts():
    found = sorted(glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf"))
    if not found:
        sys.exit("no DejaVu fonts under /usr/share/fonts/truetype/dejavu (apt-get install fonts-dejavu-core)")
    return found


def line(rng):
    parts = []
    for _ in range(rng.randint(3, 9)):
        r = rng.random()
        if r < 0.7:
            parts.append(rng.choice(WORDS))
        elif r < 0.85:
            parts.append(f"{rng.randint(0, 99999)}")
        else:
            parts.append(f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}")
    return " ".join(parts)


def render(rng, font_files, w, h):
    paper = tuple(rng.randint(225, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 60) for _ in range(3))
    im = Image.new("RGB", (w, h), paper)
    d = ImageDraw.Draw(im)
    y = rng.randint(5, 30)
    while y < h - 20:
        size = rng.randint(12, 40)
        font = ImageFont.truetype(rng.choice(font_files), size)
        d.text((rng.randint(5, 40), y), line(rng), fill=ink, font=font)
        y += int(size * rng.uniform(1.3, 2.2))
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return im


def make_inputs(work, n_images, n_pages, seed):
    rng = random.Random(seed)
    ff = fonts()
    img_dir = os.path.join(work, "images")
    os.makedirs(img_dir, exist_ok=True)
    for i in range(n_images):
        w, h = rng.randint(200, 1000), rng.randint(120, 1000)
        im = render(rng, ff, w, h)
        if i % 2:
            im.save(os.path.join(img_dir, f"img{i:04d}.jpg"), quality=rng.randint(60, 95))
        else:
            im.save(os.path.join(img_dir, f"img{i:04d}.png"))
    pages = [render(rng, ff, 595, 842) for _ in range(n_pages)]
    pdf = os.path.join(work, "doc.pdf")
    pages[0].save(pdf, save_all=True, append_images=pages[1:], resolution=72.0)
    return img_dir, pdf


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every `period` seconds (an outside view beside dsocr's own)."""

    def __init__(self, pid, period=0.2):
        super().__init__(daemon=True)
        self.pid, self.period, self.samples, self.stop = pid, period, [], False

    def run(self):
        t0 = time.time()
        while not self.stop:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmRSS:"):
                            self.samples.append((time.time() - t0, int(ln.split()[1]) * 1024))
            except OSError:
                return
            time.sleep(self.period)


def run_ocr(a, inputs, extra=(), sample_rss=False):
    cmd = [a.dsocr, "ocr", "--model", a.model, "--mode", "tiny", "--task", "free", "--format", "json",
           "--max-new-tokens", str(a.max_new_tokens), "--device", a.device, "--quiet", *extra, *inputs]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = None
    if sample_rss:
        sampler = RssSampler(p.pid)
        sampler.start()
    out, err = p.communicate()
    if sampler:
        sampler.stop = True
        sampler.join()
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} ... failed with exit {p.returncode}:\n{err[-3000:]}")
    recs = [json.loads(x) for x in out.splitlines() if x.strip()]
    return recs, (sampler.samples if sampler else [])


def key(r):
    return (os.path.basename(r["source"]), r.get("page"))


def slope(ys):
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(ys))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsocr", default=os.path.join(ROOT, "build", "dsocr"))
    ap.add_argument("--model", default=os.path.join(ROOT, "tests", "goldens", "tiny-ckpt"))
    ap.add_argument("--device", default="pocl")
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--pdf-pages", type=int, default=50)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=60, help="pages before memory must be flat")
    ap.add_argument("--per-file", type=int, default=-1, help="images checked alone (-1 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=".")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    failures = []
    with tempfile.TemporaryDirectory() as work:
        img_dir, pdf = make_inputs(work, a.images, a.pdf_pages, a.seed)
        t0 = time.time()
        # The PDF first: poppler's one-time set-up (fonts, the open document) then falls inside the
        # warm-up, and the hundreds of images after it show whether anything grows per page.
        recs, rss = run_ocr(a, [pdf, img_dir], sample_rss=True)
        wall = time.time() - t0
        want = a.images + a.pdf_pages
        if len(recs) != want or any("error" in r for r in recs):
            failures.append(f"the long run gave {len(recs)} records ({sum('error' in r for r in recs)} errors), "
                            f"expected {want} pages")
        recs2, _ = run_ocr(a, [pdf, img_dir])
        same = [(r["text"], r["generated_ids"]) for r in recs] == [(r["text"], r["generated_ids"]) for r in recs2]
        if not same:
            failures.append("a second run of the same inputs differs")
        by_key = {key(r): r for r in recs}
        images = sorted(glob.glob(os.path.join(img_dir, "*")))
        if a.per_file >= 0:
            images = images[:: max(1, len(images) // max(1, a.per_file))][: a.per_file]
        mismatches = []
        for f in images:
            alone, _ = run_ocr(a, [f])
            if alone[0]["generated_ids"] != by_key[(os.path.basename(f), None)]["generated_ids"]:
                mismatches.append(os.path.basename(f))
        pdf_alone, _ = run_ocr(a, [pdf])
        for r in pdf_alone:
            if r["generated_ids"] != by_key[key(r)]["generated_ids"]:
                mismatches.append(f"doc.pdf page {r['page']} (PDF alone)")
        sample_pages = sorted({1, a.pdf_pages, max(1, a.pdf_pages // 2)})
        for k in sample_pages:
            (r,), _ = run_ocr(a, [pdf], extra=("--pages", str(k)))
            if r["generated_ids"] != by_key[("doc.pdf", k)]["generated_ids"]:
                mismatches.append(f"doc.pdf page {k} (--pages {k})")
        if mismatches:
            failures.append(f"{len(mismatches)} pages differ from their per-file runs: {mismatches[:10]}")

    mem = [r.get("memory", {}) for r in recs]
    host = [m.get("host_rss_bytes", 0) for m in mem]
    live = [m.get("device_live_bytes", 0) for m in mem]
    held = [m.get("device_held_bytes", 0) for m in mem]
    after = slice(min(a.warmup, max(0, len(recs) - 2)), None)
    mib = 1048576.0
    summary = {
        "pages": len(recs), "images": a.images, "pdf_pages": a.pdf_pages, "wall_s": round(wall, 1),
        "pages_per_s": round(len(recs) / wall, 2), "device": a.device,
        "max_new_tokens": a.max_new_tokens, "warmup_pages": a.warmup,
        "per_file_images_checked": len(images), "pdf_pages_checked_alone": a.pdf_pages + len(sample_pages),
        "second_run_identical": same, "per_file_mismatches": len(mismatches),
    }
    for name, ys in (("host_rss", host), ("device_live", live), ("device_held", held)):
        tail = ys[after]
        summary[name] = {
            "first_mib": round(ys[0] / mib, 1) if ys else None,
            "after_warmup_min_mib": round(min(tail) / mib, 1) if tail else None,
            "after_warmup_max_mib": round(max(tail) / mib, 1) if tail else None,
            "slope_kib_per_page": round(slope(tail) / 1024, 2) if tail else None,
        }
    # Flat: under 4 KiB of growth per page after the warm-up (a leak of one page's worth of
    # buffers would be far more), and device memory returning to the same level every page.
    if summary["host_rss"]["slope_kib_per_page"] is None or abs(summary["host_rss"]["slope_kib_per_page"]) > 4:
        failures.append(f"host memory grows: {summary['host_rss']}")
    if summary["device_live"]["after_warmup_max_mib"] != summary["device_live"]["after_warmup_min_mib"]:
        failures.append(f"device live memory is not flat: {summary['device_live']}")
    summary["failures"] = failures
    with open(os.path.join(a.out, "long_run.json"), "w") as f:
        json.dump({"summary": summary, "pages": [{"source": os.path.basename(r["source"]), "page": r.get("page"),
                                                  "memory": r.get("memory"), "timings": r.get("timings")}
                                                 for r in recs], "rss_samples": rss}, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(9, 4.5))
        xs = list(range(1, len(recs) + 1))
        ax.plot(xs, [v / mib for v in host], label="host resident set (dsocr's own report)")
        ax.plot(xs, [v / mib for v in held], label="device memory held (live + pool)")
        ax.plot(xs, [v / mib for v in live], label="device memory live after the page")
        ax.axvline(a.warmup, color="grey", ls=":", label=f"warm-up ({a.warmup} pages)")
        ax.axvline(a.pdf_pages + 0.5, color="black", ls="--", lw=0.8, label="PDF pages | images")
        ax.set_xlabel("page (one process)")
        ax.set_ylabel("MiB")
        ax.set_ylim(bottom=0)
        ax.set_title(f"dsocr ocr: a {a.pdf_pages}-page PDF + {a.images} images in one process, {summary['device']}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, "long_run.png"), dpi=110)
    except ImportError:
        print("matplotlib is not installed: plot skipped", file=sys.stderr)
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

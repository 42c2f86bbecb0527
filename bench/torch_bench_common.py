"""Shared pieces of bench/torch_bench.py: the reference's import path, notes, logging, timing,
CUDA memory counters and the run's environment (CPU name, fp32 mode, git SHA)."""
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "reference"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dsocr_ref import config as cfgmod  # noqa: E402,F401
from dsocr_ref import model as modelmod  # noqa: E402,F401
from dsocr_ref import ops  # noqa: E402,F401

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
NOTES = []


def note(s):
    if s not in NOTES:
        NOTES.append(s)


def log(s):
    print(s, flush=True)


def dt_name(dt):
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dt]


# ============================================================================ timing
class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def once(self, fn):
        if self.cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    def median(self, fn, runs, warmup):
        """(median ms, [ms...]) of `runs` timed calls after `warmup` untimed ones."""
        for _ in range(warmup):
            fn()
        self.sync()
        ms = [self.once(fn) for _ in range(max(1, runs))]
        return statistics.median(ms), ms


def reset_peak(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(dev):
    return torch.cuda.max_memory_allocated() / 2 ** 20 if dev.type == "cuda" else None


def current_mib(dev):
    return torch.cuda.memory_allocated() / 2 ** 20 if dev.type == "cuda" else None


# ============================================================================ environment
def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def set_fp32_ieee():
    """fp32 means IEEE fp32: no TF32 in matmuls or convolutions. Returns what torch reports."""
    torch.set_float32_matmul_precision("highest")
    try:
        torch.backends.cudnn.allow_tf32 = False
    except Exception as e:  # a torch that refuses the legacy switch
        note(f"cudnn.allow_tf32: {e}")
    out = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    try:
        out["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        out["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    except Exception as e:
        note(f"reading the TF32 switches: {e}")
    return out


def git_sha():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except Exception:
        return None


def run_identity(tool, device_name, dev, tiny):
    """The fields every PyTorch bench JSON starts with: the tool, the device, the versions, the
    date, the commit and the config size."""
    return {
        "tool": tool,
        "device": device_name,
        "device_type": dev.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": git_sha(),
        "config": "tiny" if tiny else "full",
        "shapes": "small" if tiny else "real",
    }


def decode_figures(r, decode_run, n, runs, dev, label, logf):
    """Times decode_run(n) (ms for n greedy steps) `runs` times after a short warm-up into r:
    decode_tokens, decode_runs_ms, decode_ms_per_tok (median), decode_tok_s, decode_peak_mem_mib;
    logs `label` then tok/s."""
    decode_run(min(8, n))  # warm-up
    ms = [decode_run(n) for _ in range(runs)]
    r["decode_tokens"] = n
    r["decode_runs_ms"] = ms
    r["decode_ms_per_tok"] = statistics.median(ms) / n
    r["decode_tok_s"] = 1e3 / r["decode_ms_per_tok"]
    logf(f"{label}{r['decode_tok_s']:10.1f} tok/s")
    r["decode_peak_mem_mib"] = peak_mib(dev)


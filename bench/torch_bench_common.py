"""Shared pieces of bench/torch_bench.py: the reference's import path, notes, logging, timing,
CUDA memory counters and the run's environment (CPU name, fp32 mode, git SHA)."""
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

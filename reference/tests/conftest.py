import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # reference/ -> import dsocr_ref
torch.set_num_threads(1)

REPO = os.path.dirname(os.path.dirname(HERE))
GOLDENS = os.path.join(REPO, "tests", "goldens")

# ---- cross-check ledger: every comparison of dsocr_ref against torch or an independent
# formulation records its measured error; the table is printed at the end of the run.
CROSSCHECKS = {}  # (check, reference) -> dict(n, max_abs, max_rel, bound)


def record(check, reference, max_abs, max_rel, bound):
    e = CROSSCHECKS.setdefault((check, reference), dict(n=0, max_abs=0.0, max_rel=0.0, bound=bound))
    e["n"] += 1
    e["max_abs"] = max(e["max_abs"], float(max_abs))
    e["max_rel"] = max(e["max_rel"], float(max_rel))
    e["bound"] = max(e["bound"], bound)


def crosscheck(check, reference, got, ref, bound):
    """Asserts max|got - ref| / max|ref| < bound (<= 0 when bound is 0: bit-exact) and records it."""
    assert got.shape == ref.shape, (check, tuple(got.shape), tuple(ref.shape))
    g, r = got.detach().double(), ref.detach().double()
    d = float((g - r).abs().max()) if g.numel() else 0.0
    rel = d / max(float(r.abs().max()) if r.numel() else 0.0, 1e-30)
    record(check, reference, d, rel, bound)
    if bound == 0:
        assert torch.equal(got, ref), (check, d)
    else:
        assert rel < bound, (check, rel, bound)
    return rel


def pytest_terminal_summary(terminalreporter):
    if not CROSSCHECKS:
        return
    tr = terminalreporter
    tr.write_sep("=", f"cross-checks (torch {torch.__version__}): max over cases; rel = max|diff| / max|ref|")
    w1 = max(len(k[0]) for k in CROSSCHECKS)
    w2 = max(len(k[1]) for k in CROSSCHECKS)
    tr.write_line(f"{'check':<{w1}}  {'against':<{w2}}  {'cases':>5}  {'max_abs':>9}  {'max_rel':>9}  {'bound':>7}")
    for (c, r), e in CROSSCHECKS.items():
        tr.write_line(f"{c:<{w1}}  {r:<{w2}}  {e['n']:>5}  {e['max_abs']:>9.2e}  {e['max_rel']:>9.2e}  "
                      f"{e['bound']:>7.0e}")

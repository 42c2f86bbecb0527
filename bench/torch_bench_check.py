"""bench/torch_bench.py --check: on the tiny model, the official ops == the reference ops (== the
reference as it is, on the CPU), KV-cache decode == the one-shot forward, and every kernel case runs."""
import os

import torch

from torch_bench_common import ROOT, cfgmod, dt_name
from torch_bench_kernels import kernel_cases
from torch_bench_model import build_model, full_config, prefill, tiny_config
from torch_bench_ops import drop_param_caches, install_ops


# ============================================================================ check
def check(dev):
    """Tiny model: official ops == reference ops (== the reference as it is, on the CPU)."""
    c = tiny_config()
    full = full_config()
    for p in (os.path.join(ROOT, "tests", "data", "official", "deepseek-ocr", "config.json"),):
        if os.path.exists(p):
            ok = cfgmod.load(p).to_dict() == full.to_dict()
            print(f"full config == {p}: {ok}")
            if not ok:
                return 1
            break
    m, _ = build_model(c, dev)
    g = torch.Generator(device=dev).manual_seed(3)
    glob = torch.rand(1, 3, 1024, 1024, generator=g, device=dev) * 2 - 1
    tiles = torch.rand(6, 3, 640, 640, generator=g, device=dev) * 2 - 1
    ids = torch.randint(2, c.vocab_size, (40,), generator=g, device=dev)
    pos = torch.arange(48, device=dev)

    def run():
        with torch.inference_mode():
            v = m.vision_embeddings(glob, tiles, (2, 3))
            full_logits = m.decode(m.model.embed_tokens.weight[ids], pos[:40])
            caches = [{} for _ in m.model.layers]
            lg = [prefill(m, ids[:32], pos[:32], caches)]
            for i in range(8):
                lg.append(m.decode(m.model.embed_tokens.weight[ids[32 + i:33 + i]], pos[32 + i:33 + i],
                                   kv_caches=caches))
            return {"vision": v.float(), "logits": full_logits, "cached": torch.cat(lg)}

    modes = (["pristine"] if dev.type == "cpu" else []) + ["reference", "official"]
    res = {}
    for mode in modes:
        install_ops(mode)
        drop_param_caches(m)
        res[mode] = run()
    install_ops("pristine")
    base = modes[0]
    bad = 0
    for mode in modes[1:]:
        for k, v in res[mode].items():
            ref = res[base][k]
            err = float((v - ref).abs().max() / ref.abs().max())
            ok = err < 1e-4
            bad += not ok
            print(f"{mode:>9} vs {base}: {k:<7} max |diff| / max |ref| = {err:.2e} {'ok' if ok else 'MISMATCH'}")
    # KV-cache decode == the same rows of the one-shot forward
    for mode in modes:
        err = float((res[mode]["cached"] - res[mode]["logits"][31:]).abs().max() / res[mode]["logits"].abs().max())
        bad += err >= 1e-4
        print(f"{mode:>9}: KV-cache decode vs full forward: {err:.2e} {'ok' if err < 1e-4 else 'MISMATCH'}")
    # kernels: every case runs (tiny shapes)
    install_ops("official")
    for dt in (torch.float32, torch.bfloat16):
        for name, _bound, _gflop, _gbytes, fn, extras in kernel_cases(dev, dt, True):
            try:
                with torch.inference_mode():
                    fn()
                    for f in extras.values():
                        f()
            except Exception as e:
                print(f"kernel {name} {dt_name(dt)}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    install_ops("pristine")
    print("check:", "ok" if not bad else f"{bad} mismatches")
    return 1 if bad else 0

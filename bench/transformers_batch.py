"""Batched greedy decode in transformers, the peer of `dsocr bench model --batch` (issue 17).

bench_batch(hf, c, dev, dt, tm, batches, steps, log) runs, for each B in `batches`: B random text
prompts of 1,024 tokens prefilled together (one forward of [B, 1024]), then `steps` greedy steps of
B tokens with transformers' DynamicCache (argmax on the device, no host sync in the loop). It
returns one dict per B: aggregate tok/s (B * steps / decode time), the step time, the prefill
time and the peak CUDA memory. All sequences have the same length, which is the best case for a
padded batch: no padding and no finished rows.
"""
import torch

from torch_bench_common import peak_mib, reset_peak  # beside this file (bench/)


def _prompts(c, dev, b, p, img, seed=7):
    gen = torch.Generator(device=dev).manual_seed(seed)
    ids = torch.randint(2, c.vocab_size, (b, p), generator=gen, device=dev)
    ids[ids == img] = 2  # text only: no image placeholder
    return ids


def _one(hf, ids, steps, tm):
    state = {}

    def prefill():
        out = hf(input_ids=ids, use_cache=True, logits_to_keep=1)
        state["cache"], state["tok"] = out.past_key_values, out.logits[:, -1].argmax(-1)

    def decode():
        t = state["tok"]
        for _ in range(steps):
            o = hf(input_ids=t.view(-1, 1), past_key_values=state["cache"], use_cache=True, logits_to_keep=1)
            t = o.logits[:, -1].argmax(-1)
        state["tok"] = t

    tm.sync()
    pre_ms = tm.once(prefill)
    dec_ms = tm.once(decode)
    return pre_ms, dec_ms


def bench_batch(hf, c, dev, tm, batches, steps, img, log, prompt=1024):
    """One row per B (see the module's doc); a B that runs out of memory gives a row with 'error'."""
    rows = []
    with torch.inference_mode():
        for b in batches:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            reset_peak(dev)
            ids = _prompts(c, dev, b, prompt, img)
            try:
                _one(hf, ids[:, :64], 4, tm)  # warm-up: kernels and allocator
                pre_ms, dec_ms = _one(hf, ids, steps, tm)
            except torch.cuda.OutOfMemoryError as e:  # a row, not a failed run
                rows.append({"batch": b, "error": f"out of memory: {str(e).splitlines()[0]}"})
                log(f"  batch {b:3d}: out of memory")
                continue
            r = {"batch": b, "prompt_tokens": prompt, "steps": steps, "prefill_ms": pre_ms,
                 "decode_ms": dec_ms, "step_ms": dec_ms / steps, "aggregate_tok_s": b * steps * 1e3 / dec_ms,
                 "peak_mem_mib": peak_mib(dev)}
            log(f"  batch {b:3d}: prefill {pre_ms:9.1f} ms, step {r['step_ms']:7.2f} ms, "
                f"{r['aggregate_tok_s']:9.1f} tok/s aggregate")
            rows.append(r)
    return rows

"""Train the demo DeepSeek-OCR (demo_model.py) on synthetic text images (synth.py), resumably.

    python -m dsocr_ref.train_ocr --assets DIR --state DIR --out DIR [--minutes 8] [--device cuda]

Each call trains for --minutes from the state in --state (none: a fresh start from --seed), then
writes to --out: the new state (state_model / state_m / state_v .safetensors: weights and both
AdamW moments as bf16, so that the state travels between the GPU machine's calls; meta.json: the
step, the schedule, the seeds), the log of this and every earlier call (log.jsonl: loss per 50
steps, held-out CER per eval), and the checkpoint in the official layout (ckpt/).

The forward is the reference model's own modules (model.py) with the official code's torch ops
(bench/torch_bench_ops.py install_ops("official"), device-aware, checked against the reference
by torch_bench --check), batched: the vision encoder per view as the model does it, the decoder
over right-padded sequences with a causal mask (a padded position is never attended by a real
one). Sequence: [bos] [image x 73] enc("\\nFree OCR.") text [eos]; the loss is on text and eos.
"""
import argparse
import contextlib
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from PIL import Image

from . import checkpoint, ctc_aux, demo_model, eval_cer, synth
from . import config as cfgmod
from . import model as modelmod
from . import small_tokenizer
from .train_state import export, init_from_checkpoint, load_state, private_assets, write_out  # noqa: F401 (export)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import torch_bench_ops  # noqa: E402

PROMPT_AFTER_IMAGE = "\nFree OCR."
N_IMAGE_TOKENS = 73  # tiny: 8 x (8 + 1) + 1


def amp(dev):
    """bf16 autocast on CUDA, nothing elsewhere (torch 1.13's CPU build refuses even a disabled one)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()


def schedule(step, total, warmup, peak):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


CURRICULUM = (0.15, 0.3, 0.45, 0.6)  # share of the plan at which levels 1, 2, 3, 4 enter


def curriculum_level(rng, frac, curriculum=CURRICULUM):
    """Short lines and large fonts first, then longer lines, paragraphs, tables; frac is the share
    of the planned steps done, curriculum the shares at which levels 1..4 enter."""
    top = sum(frac >= f for f in curriculum)
    return min(top, int(rng.random() * (top + 1.5)))


class Stream(torch.utils.data.IterableDataset):
    """Endless (pixels [3,512,512], target ids) pairs; worker w of a call starting at `step` draws
    from random.Random(seed, step, w), so a resumed run never repeats a started one's samples.
    Each worker yields whole batches in turn, so its n-th sample is near global step
    step + n * workers / batch; the curriculum follows that share of total_steps."""

    def __init__(self, tok_path, assets, seed, step, total_steps, workers, batch, curriculum=CURRICULUM,
                 canvas="fit"):
        self.tok_path, self.assets, self.seed, self.step, self.canvas = tok_path, assets, seed, step, canvas
        self.curriculum = tuple(curriculum)
        self.total, self.per_sample = max(1, total_steps), max(1, workers) / batch

    def __iter__(self):
        from tokenizers import Tokenizer
        info = torch.utils.data.get_worker_info()
        w = info.id if info else 0
        rng = random.Random(f"{self.seed}-{self.step}-{w}")
        tok = Tokenizer.from_file(self.tok_path)
        split = synth.Split(synth.find_fonts([self.assets]), synth.load_words(os.path.join(self.assets, "words.txt")))
        n = 0
        while True:
            level = curriculum_level(rng, (self.step + n * self.per_sample) / self.total, self.curriculum)
            img, text = synth.render_sample(rng, level, split.train_fonts, split.train_words, canvas=self.canvas)
            n += 1
            yield bytes_of(img), tok.encode(text).ids, text


def bytes_of(img):
    """The image stretched to the tiny view as the official preprocessing stretches it (Pillow
    BICUBIC to 512 x 512; its pad is then a no-op), as uint8 [3,512,512]: what the data workers
    hand over (a quarter of float32's bytes through the loader's shared memory; normalised on the
    device)."""
    a = torch.frombuffer(bytearray(img.convert("RGB").resize((512, 512), Image.BICUBIC).tobytes()),
                         dtype=torch.uint8)
    return a.reshape(512, 512, 3).permute(2, 0, 1).contiguous()


def normalise(a):
    """uint8 [..., 3, H, W] -> the model's pixels: (x / 255 - 0.5) / 0.5, as the official transform."""
    return (a.float() / 255.0 - 0.5) / 0.5


def pixels_of(img):
    return normalise(bytes_of(img))


def collate(batch):
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch], [b[2] for b in batch]


def image_embeds(m, pixels):
    """pixels [B,3,512,512] -> [B,73,C]: rows of the 8x8 grid each + image_newline, then view_seperator."""
    proj = m.encode_view(pixels)  # [B,64,C]
    b, hw, c = proj.shape
    s = int(math.isqrt(hw))
    nl = m.model.image_newline.reshape(1, 1, 1, c).expand(b, s, 1, c)
    rows = torch.cat([proj.reshape(b, s, s, c), nl.to(proj.dtype)], dim=2).reshape(b, s * (s + 1), c)
    sep = m.model.view_seperator.reshape(1, 1, c).expand(b, 1, c).to(proj.dtype)
    return torch.cat([rows, sep], dim=1)


def scale_penalty(img_ms, rms_max):
    """(mean square - rms_max²)² where above, 0 below: keeps the image embeddings near the token
    embeddings' scale. The decoder normalises every position first, so the loss alone is nearly
    blind to that scale; the first run's grew 350-fold (0.9 -> 316) and with it the vision
    encoder's effective learning rate fell (bench/results/2026-12-06-demo-training)."""
    if rms_max <= 0:
        return img_ms * 0.0
    return torch.relu(img_ms - rms_max * rms_max) ** 2


def causal_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[2]  # torch < 2.0 (the CPU test environment)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return s.softmax(-1) @ v


def decoder_logits(m, x):
    """x [B,T,hidden] -> logits [B,T,vocab]: the decoder layers with a causal mask over the batch."""
    c = m.c
    b, t, _ = x.shape
    pos = torch.arange(t, device=x.device)
    for layer in m.model.layers:
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(b, t, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = a.k_proj(h).view(b, t, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = a.v_proj(h).view(b, t, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q, k = torch_bench_ops.rope_official(q, pos, c.rope_theta), torch_bench_ops.rope_official(k, pos, c.rope_theta)
        o = causal_attention(q, k, v)
        x = x + a.o_proj(o.transpose(1, 2).reshape(b, t, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return m.lm_head(m.model.norm(x))


def sequences(m, pixels, targets, ids):
    """Embeddings [B,T,hidden], labels [B,T] (-100 where no loss) and the image embeddings
    [B,73,hidden] (the scale penalty and ctc_aux read them) for a batch."""
    dev = pixels.device
    prefix = [ids["bos"]] + [ids["image"]] * N_IMAGE_TOKENS + ids["prompt"]
    rows = [prefix + tg + [ids["eos"]] for tg in targets]
    t = max(len(r) for r in rows)
    tok = torch.full((len(rows), t), ids["eos"], dtype=torch.long)
    lab = torch.full((len(rows), t), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        tok[i, :len(r)] = torch.tensor(r)
        lab[i, len(prefix) - 1:len(r) - 1] = torch.tensor(r[len(prefix):])  # position p predicts token p+1
    tok, lab = tok.to(dev), lab.to(dev)
    x = m.model.embed_tokens.weight[tok]
    img = image_embeds(m, pixels)
    x = torch.cat([x[:, :1], img.to(x.dtype), x[:, 1 + N_IMAGE_TOKENS:]], dim=1)
    return x, lab, img


@torch.no_grad()
def greedy(m, pixels, ids, max_new):
    """Batched greedy decoding (full recompute per step; short outputs) -> list of id lists."""
    prefix = [ids["bos"]] + [ids["image"]] * N_IMAGE_TOKENS + ids["prompt"]
    dev = pixels.device
    img = image_embeds(m, pixels)
    emb = m.model.embed_tokens.weight
    base = emb[torch.tensor(prefix, device=dev)][None].expand(pixels.shape[0], -1, -1).clone()
    base[:, 1:1 + N_IMAGE_TOKENS] = img.to(base.dtype)
    out = torch.zeros(pixels.shape[0], 0, dtype=torch.long, device=dev)
    done = torch.zeros(pixels.shape[0], dtype=torch.bool, device=dev)
    for _ in range(max_new):
        x = torch.cat([base, emb[out]], dim=1)
        nxt = decoder_logits(m, x)[:, -1].float().argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, ids["eos"]), nxt)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= nxt == ids["eos"]
        if bool(done.all()):
            break
    res = []
    for row in out.tolist():
        res.append(row[:row.index(ids["eos"])] if ids["eos"] in row else row)
    return res


def cer(hyp, ref):
    """Levenshtein distance / len(ref) over characters."""
    return eval_cer.edit_distance(hyp, ref) / max(1, len(ref))


def evaluate(m, tok, ids, heldout, dev, max_new=96):
    m.eval()
    errs, exact, chars = 0.0, 0, 0
    for i in range(0, len(heldout), 50):
        chunk = heldout[i:i + 50]
        px = torch.stack([pixels_of(im) for im, _, _ in chunk]).to(dev)
        with amp(dev):
            outs = greedy(m, px, ids, max_new)
        for (im, text, _), o in zip(chunk, outs):
            hyp = tok.decode(o, skip_special_tokens=True)
            errs += cer(hyp, text) * len(text)
            chars += len(text)
            exact += hyp.strip() == text.strip()
    m.train()
    return errs / max(1, chars), exact / max(1, len(heldout))


# ---------------------------------------------------------------------------- the run
def demo_setup(tok):
    """-> ids (bos, eos, image, prompt: the ids after the image) and the released-style config dict
    of the demo model for the demo tokenizer `tok` (vocabulary padded to a multiple of 64)."""
    sid = small_tokenizer.special_ids(tok)
    ids = {"bos": sid["bos"], "eos": sid["eos"], "image": sid["image"], "prompt": tok.encode(PROMPT_AFTER_IMAGE).ids}
    vocab = (small_tokenizer.vocab_size_total(tok) + 63) // 64 * 64
    return ids, demo_model.demo_config_dict(vocab, ids["bos"], ids["eos"])


def fresh_model(cfg_dict, seed, dev, lr):
    """The demo model with random_init's weights (seed) on dev in training mode, and its AdamW
    (weight decay 0.01 on the matrices other than embeddings, none elsewhere)."""
    torch.manual_seed(seed)
    m = modelmod.build(cfgmod.from_dict(cfg_dict))
    checkpoint.random_init(m, seed)
    m.to(dev).train()
    decay = [p for n, p in m.named_parameters() if p.dim() >= 2 and "embed" not in n]
    other = [p for n, p in m.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-8)
    return m, opt


def train_step(m, opt, px, targets, ids, embed_rms_max, ctc=None):
    """One optimiser step on normalised pixels px [B,3,512,512] (on the model's device) and target
    id lists: text loss + the image-scale penalty (+ weight * ctc_aux's loss when ctc = (head,
    weight, texts); the head's parameters in opt), gradients clipped to norm 1. -> (loss, image
    embeddings' mean square), both tensors."""
    with amp(px.device):
        x, lab, img = sequences(m, px, targets, ids)
        logits = decoder_logits(m, x)
    img_ms = img.float().pow(2).mean()
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), lab.reshape(-1), ignore_index=-100)
    total = loss + scale_penalty(img_ms, embed_rms_max)
    if ctc is not None:
        head, weight, texts = ctc
        total = total + weight * ctc_aux.ctc_loss(head, img, texts)
    opt.zero_grad(set_to_none=True)
    total.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss, img_ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", required=True, help="fonts and words.txt (synth.copy_assets)")
    ap.add_argument("--tokenizer", required=True, help="folder with the demo tokenizer.json")
    ap.add_argument("--state", default="", help="folder of a previous call's state (empty: fresh start)")
    ap.add_argument("--init", default="", help="without --state: start from this checkpoint's weights (e.g. "
                    "models/dsocr-demo) with a fresh optimiser, CTC head and schedule")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=500, help="steps of linear LR warm-up")
    ap.add_argument("--embed-rms-max", type=float, default=2.0,
                    help="training only: a penalty keeps the image embeddings' RMS at most this (0: off)")
    ap.add_argument("--ctc", type=float, default=0.0,
                    help="training only: weight of ctc_aux's loss from the image embeddings (0: off)")
    ap.add_argument("--total-steps", type=int, default=0,
                    help="length of the LR schedule and curriculum over all calls; 0: a fresh run measures its "
                         "step rate over its first --probe-steps and plans what --minutes holds, a resumed run "
                         "keeps its plan")
    ap.add_argument("--probe-steps", type=int, default=200)
    ap.add_argument("--curriculum", default=",".join(map(str, CURRICULUM)),
                    help="shares of the plan at which levels 1..4 enter (a resumed run keeps its own)")
    ap.add_argument("--canvas", default="fit", choices=["fit", "square"],
                    help="synth's canvas for the training images (the held-out set is always the generator's own)")
    ap.add_argument("--save-every", type=float, default=0, help="minutes between snapshots into --out (0: at the end)")
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--eval-n", type=int, default=100)
    ap.add_argument("--eval-max-new", type=int, default=96, help="greedy tokens per held-out image at most")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (tests)")
    a = ap.parse_args(argv)
    t_start = time.time()
    dev = torch.device(a.device)
    torch_bench_ops.install_ops("official")
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    ids, cfg_dict = demo_setup(tok)
    m, opt = fresh_model(cfg_dict, a.seed, dev, a.lr)
    head = None
    if a.ctc > 0:
        head = ctc_aux.CtcHead(cfg_dict["language_config"]["hidden_size"]).to(dev)
        opt.add_param_group({"params": list(head.parameters()), "weight_decay": 0.0})
    meta = {"step": 0, "calls": 0, "seed": a.seed, "generator_version": synth.GENERATOR_VERSION}
    log = []
    if a.state and os.path.exists(os.path.join(a.state, "meta.json")):
        meta = load_state(m, opt, a.state, dev, head)
        with open(os.path.join(a.state, "log.jsonl")) as f:
            log = [json.loads(line) for line in f if line.strip()]
    elif a.init:
        meta["init"] = init_from_checkpoint(m, a.init, cfg_dict)
    if a.total_steps:
        meta["total_steps"] = a.total_steps
    curriculum = tuple(meta.get("curriculum") or (float(x) for x in a.curriculum.split(",")))
    if len(curriculum) != 4 or list(curriculum) != sorted(curriculum):
        raise SystemExit(f"--curriculum: four increasing shares, got {curriculum}")
    meta.update(batch=a.batch, lr=a.lr, warmup=a.warmup, embed_rms_max=a.embed_rms_max, curriculum=list(curriculum),
                ctc=a.ctc, canvas=meta.get("canvas", a.canvas),
                n_params=sum(p.numel() for p in m.parameters()))
    planned = "total_steps" in meta
    a.assets = private_assets(a.assets)
    split = synth.Split(synth.find_fonts([a.assets]), synth.load_words(os.path.join(a.assets, "words.txt")))
    heldout = synth.heldout_set(a.eval_n, split=split)
    extra = {"prefetch_factor": 4} if a.workers else {}
    step0, run_loss, n_loss = meta["step"], 0.0, 0
    wait, t_logged = 0.0, time.time()  # data_wait in the log: the share of wall time spent waiting for data
    t_probe, t_saved, stop = None, time.time(), False
    while not stop:
        # Until planned, the curriculum sees a distant end (the first levels); the plan restarts the stream.
        stream = Stream(os.path.join(a.tokenizer, "tokenizer.json"), a.assets, a.seed, meta["step"],
                        meta.get("total_steps", 10**9), a.workers, a.batch, curriculum, meta["canvas"])
        dl = torch.utils.data.DataLoader(stream, batch_size=a.batch, num_workers=a.workers, collate_fn=collate,
                                         pin_memory=dev.type == "cuda", **extra)
        t_end = None
        for px, targets, texts in dl:
            t_got = time.time()
            if t_end is not None:  # the time this step waited for the data workers
                wait += t_got - t_end
            step = meta["step"]
            for g in opt.param_groups:
                g["lr"] = schedule(step, meta.get("total_steps", 10**9), a.warmup, a.lr)
            loss, img_ms = train_step(m, opt, normalise(px.to(dev, non_blocking=True)), targets, ids,
                                      a.embed_rms_max, (head, a.ctc, texts) if head is not None else None)
            meta["step"] += 1
            run_loss += float(loss)
            n_loss += 1
            if meta["step"] % 50 == 0:
                now = time.time()
                log.append({"step": meta["step"], "loss": run_loss / n_loss, "lr": opt.param_groups[0]["lr"],
                            "img_rms": round(float(img_ms) ** 0.5, 3), "t": round(now - t_start, 1),
                            "data_wait": round(wait / max(1e-9, now - t_logged), 3)})
                print(json.dumps(log[-1]), flush=True)
                run_loss, n_loss, wait, t_logged = 0.0, 0, 0.0, now
            done = meta["step"] - step0
            if not planned and done == a.probe_steps // 4:
                t_probe = time.time()  # the rate is measured once the workers are up
            if not planned and done >= a.probe_steps and t_probe is not None:
                rate = (done - a.probe_steps // 4) / (time.time() - t_probe)
                left = a.minutes * 60 - (time.time() - t_start)
                meta["total_steps"] = int(meta["step"] + 0.9 * rate * left)  # 10 %: evaluations, snapshots
                meta["steps_per_s"] = round(rate, 2)
                planned = True
                print(json.dumps({"plan": meta["total_steps"], "steps_per_s": meta["steps_per_s"]}), flush=True)
                break
            out_of_time = time.time() - t_start > a.minutes * 60 or (a.max_steps and done >= a.max_steps)
            if meta["step"] % a.eval_every == 0 or out_of_time:
                e_cer, e_exact = evaluate(m, tok, ids, heldout, dev, a.eval_max_new)
                log.append({"step": meta["step"], "cer": e_cer, "exact": e_exact, "t": round(time.time() - t_start, 1)})
                print(json.dumps(log[-1]), flush=True)
            if out_of_time:
                stop = True
                break
            if a.save_every and time.time() - t_saved > a.save_every * 60:
                write_out(m, opt, meta, log, cfg_dict, a, ids, a.out, head)
                t_saved = time.time()
            t_end = time.time()
        else:
            stop = True
    meta["calls"] += 1
    write_out(m, opt, meta, log, cfg_dict, a, ids, a.out, head)
    print(f"done: step {meta['step']}, {time.time() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

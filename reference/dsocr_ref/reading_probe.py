"""Does the demo model learn to read at all? A short diagnostic for issue 14.

    python -m dsocr_ref.reading_probe --assets DIR --tokenizer DIR [--words 20] [--steps 600]
                                      [--batch 32] [--lr 1e-3] [--blank] [--clean] [--ctc W] [--device cuda]
                                      [--out F.jsonl]

The demo model (demo_model.py, fresh weights) is trained as train_ocr trains it (same sequences,
loss, penalty and ops) on images of one word each, drawn from --words fixed words of the training
split, rendered as curriculum level 0 renders text: any training font, size, colour, position,
rotation, blur, noise and JPEG. Every --every steps it reports, on a fresh batch, the accuracy of
the first text token (teacher-forced argmax at the first text position) against chance, 1/words
(several words may share a first token, so chance is at most that); "prior" in the first report is
the score of always answering the commonest first token, what a model scores that has learnt
the words but not the image. --eval sets the images per report (the 32 of a batch leave a
standard error of about 0.07 around 0.2).

The words have no language prior to learn beyond their frequencies: a first-token accuracy well
above chance can only come from the image. --blank is the control. It draws the same words on blank
images, which must stay near chance. Two training runs that never read (bench/results/
2026-12-06-demo-training, 2026-12-07-demo-training-2) are the reason for this probe. The probe runs
in minutes on a GPU, where the training runs took 8 to 19.
"""
import argparse
import json
import random
import time

import torch

from . import ctc_aux, synth, train_ocr


def pick_words(split, n, seed):
    """n distinct alphabetic words of 4-7 letters from the training split, in a fixed order."""
    pool = sorted({w for w in split.train_words if 4 <= len(w) <= 7 and w.isalpha()})
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} training words of 4-7 letters, {n} asked for")
    return random.Random(seed).sample(pool, n)


def first_token_prior(tok, words):
    """The accuracy of always answering the commonest first token of `words`: what a model that
    has learnt the words but not the image scores (several words may share a first token)."""
    firsts = [tok.encode(w).ids[0] for w in words]
    return max(firsts.count(t) for t in set(firsts)) / len(words)


def draw(rng, split, words, n, blank, clean=False, canvas="fit"):
    """n (uint8 [3,512,512], word) pairs: level-0 renders of one of `words`; blank: paper only;
    clean: without the ink blur and _augment's noise, JPEG and the like."""
    out = []
    for _ in range(n):
        img, word, _ = synth.render_sample_info(rng, 0, split.train_fonts, words, augment=not clean,
                                                text=rng.choice(words), canvas=canvas)
        if blank:
            img = img.copy()
            img.paste(img.getpixel((0, 0)), (0, 0, img.width, img.height))
        out.append((train_ocr.bytes_of(img), word))
    return out


def first_token_accuracy(m, ids, tok, batch, dev):
    px = train_ocr.normalise(torch.stack([b[0] for b in batch]).to(dev))
    targets = [tok.encode(w).ids for _, w in batch]
    with torch.no_grad(), train_ocr.amp(dev):
        x, lab, _ = train_ocr.sequences(m, px, targets, ids)
        logits = train_ocr.decoder_logits(m, x)
    p = 1 + train_ocr.N_IMAGE_TOKENS + len(ids["prompt"]) - 1  # the position that predicts the first text token
    return float((logits[:, p].float().argmax(-1) == lab[:, p]).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", required=True, help="fonts and words.txt (synth.copy_assets)")
    ap.add_argument("--tokenizer", required=True, help="folder with the demo tokenizer.json")
    ap.add_argument("--words", type=int, default=20)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--every", type=int, default=50, help="steps between reports")
    ap.add_argument("--eval", type=int, default=0, help="fresh images per report (0: --batch)")
    ap.add_argument("--blank", action="store_true", help="the control: the words on blank images")
    ap.add_argument("--clean", action="store_true", help="no augmentation (blur, noise, JPEG...)")
    ap.add_argument("--canvas", default="fit", choices=["fit", "square"], help="synth's canvas")
    ap.add_argument("--ctc", type=float, default=0.0, help="weight of ctc_aux's loss (0: none)")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="also write the reports here (JSON lines)")
    a = ap.parse_args(argv)
    from tokenizers import Tokenizer
    dev = torch.device(a.device)
    train_ocr.torch_bench_ops.install_ops("official")
    tok = Tokenizer.from_file(f"{a.tokenizer}/tokenizer.json")
    ids, cfg_dict = train_ocr.demo_setup(tok)
    m, opt = train_ocr.fresh_model(cfg_dict, a.seed, dev, a.lr)
    head = None
    if a.ctc > 0:
        head = ctc_aux.CtcHead(cfg_dict["language_config"]["hidden_size"]).to(dev)
        opt.add_param_group({"params": list(head.parameters()), "weight_decay": 0.0})
    split = synth.Split(synth.find_fonts([a.assets]), synth.load_words(f"{a.assets}/words.txt"))
    words = pick_words(split, a.words, a.seed)
    rng = random.Random(a.seed)
    reports = [{"words": words, "chance": 1.0 / a.words, "prior": first_token_prior(tok, words), "blank": a.blank, "clean": a.clean, "ctc": a.ctc, "canvas": a.canvas,
                "batch": a.batch, "lr": a.lr, "device": str(dev)}]
    print(json.dumps(reports[0]), flush=True)
    t0, run, n = time.time(), 0.0, 0
    for step in range(1, a.steps + 1):
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, step / max(1, a.warmup))
        batch = draw(rng, split, words, a.batch, a.blank, a.clean, a.canvas)
        px = train_ocr.normalise(torch.stack([b[0] for b in batch]).to(dev))
        ctc = (head, a.ctc, [w for _, w in batch]) if head is not None else None
        loss, img_ms = train_ocr.train_step(m, opt, px, [tok.encode(w).ids for _, w in batch], ids, 2.0, ctc)
        run, n = run + float(loss.detach()), n + 1
        if step % a.every == 0 or step == a.steps:
            m.eval()
            acc = first_token_accuracy(m, ids, tok, draw(rng, split, words, a.eval or a.batch, a.blank, a.clean, a.canvas), dev)
            m.train()
            reports.append({"step": step, "loss": round(run / n, 4), "first_token_acc": acc,
                            "img_rms": round(float(img_ms) ** 0.5, 3), "t": round(time.time() - t0, 1)})
            print(json.dumps(reports[-1]), flush=True)
            run, n = 0.0, 0
    if a.out:
        with open(a.out, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in reports)
    return reports


if __name__ == "__main__":
    main()

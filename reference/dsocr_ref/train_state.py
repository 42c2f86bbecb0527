"""train_ocr's state and export: the training state (weights and both AdamW moments as bf16, the
CTC head, meta.json) saved and restored between the GPU machine's calls, the checkpoint in the
official layout, the curve, a private copy of the assets, and a start from an exported checkpoint
(--init)."""
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file

from . import checkpoint


def named_trained(m, head):
    """The trained parameters by name: the model's, and ctc_aux's head (if any) as ctc_head.*."""
    out = list(m.named_parameters())
    if head is not None:
        out += [("ctc_head." + n, p) for n, p in head.named_parameters()]
    return out


def save_state(m, opt, meta, out, head=None):
    sd = {k: v.detach().to(torch.bfloat16).cpu().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, os.path.join(out, "state_model.safetensors"))
    if head is not None:
        save_file({k: v.detach().float().cpu().contiguous() for k, v in head.state_dict().items()},
                  os.path.join(out, "state_ctc_head.safetensors"))
    names = {id(p): n for n, p in named_trained(m, head)}
    for key, fn in (("exp_avg", "state_m"), ("exp_avg_sq", "state_v")):
        d = {names[id(p)]: s[key].to(torch.bfloat16).cpu().contiguous() for p, s in opt.state.items() if key in s}
        save_file(d, os.path.join(out, fn + ".safetensors"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def load_state(m, opt, state_dir, dev, head=None):
    sd = load_file(os.path.join(state_dir, "state_model.safetensors"))
    m.load_state_dict({k: v.float() for k, v in sd.items()})
    head_file = os.path.join(state_dir, "state_ctc_head.safetensors")
    if head is not None and os.path.exists(head_file):  # else the head starts afresh
        head.load_state_dict({k: v.to(dev) for k, v in load_file(head_file).items()})
    mm = load_file(os.path.join(state_dir, "state_m.safetensors"))
    vv = load_file(os.path.join(state_dir, "state_v.safetensors"))
    with open(os.path.join(state_dir, "meta.json")) as f:
        meta = json.load(f)
    for n, p in named_trained(m, head):
        if n in mm:
            opt.state[p] = {"step": torch.tensor(float(meta["step"])), "exp_avg": mm[n].float().to(dev),
                            "exp_avg_sq": vv[n].float().to(dev)}
    return meta


def export(m, cfg_dict, tok_dir, ids, out_dir):
    """The checkpoint in the official layout (bf16), with the demo tokenizer."""
    checkpoint.save(m, out_dir, cfg_dict)
    for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(tok_dir, fn)):
            with open(os.path.join(tok_dir, fn), "rb") as a, open(os.path.join(out_dir, fn), "wb") as b:
                b.write(a.read())
    checkpoint._json(os.path.join(out_dir, "generation_config.json"),
                     {"_from_model_config": True, "bos_token_id": ids["bos"], "eos_token_id": ids["eos"]})


def plot(log, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tr = [r for r in log if "loss" in r]
    ev = [r for r in log if "cer" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr])
    ax[0].set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    ax[1].plot([r["step"] for r in ev], [r["cer"] for r in ev], marker="o", label="CER")
    ax[1].plot([r["step"] for r in ev], [r["exact"] for r in ev], marker="s", label="exact lines")
    ax[1].set(xlabel="step", ylim=(0, 1), title="held-out (reference, greedy)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_out(m, opt, meta, log, cfg_dict, a, ids, out, head=None):
    """State, log, checkpoint and curve into out (a fresh folder, renamed into place whole)."""
    tmp = out.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_state(m, opt, meta, tmp, head)
    with open(os.path.join(tmp, "log.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in log)
    export(m, cfg_dict, a.tokenizer, ids, os.path.join(tmp, "ckpt"))
    try:
        plot(log, os.path.join(tmp, "curve.png"))
    except ImportError as e:  # no matplotlib on the GPU machine: the curve is drawn from log.jsonl later
        print(f"no curve: {e}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


def private_assets(assets):
    """A copy of the assets folder (fonts, words.txt) under a fresh temporary folder, removed at exit.
    The data workers open font files at new sizes all through a run; on the GPU machine the device
    tool replaces the carried working tree at each call, and a worker that found its font file gone
    killed a run (bench/results/2026-12-07-demo-training-3)."""
    import atexit
    import tempfile
    dst = tempfile.mkdtemp(prefix="dsocr-assets-")
    atexit.register(shutil.rmtree, dst, True)
    for name in os.listdir(assets):
        if os.path.isfile(os.path.join(assets, name)):
            shutil.copyfile(os.path.join(assets, name), os.path.join(dst, name))
    return dst


def init_from_checkpoint(m, ckpt_dir, cfg_dict):
    """Loads an exported demo checkpoint's weights into m (same configuration, else ValueError);
    -> the folder's name, recorded in meta.json. The AdamW moments are not in a checkpoint."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        theirs = json.load(f)
    for key in ("language_config", "vision_config", "projector_config"):
        if theirs.get(key) != cfg_dict.get(key):
            raise ValueError(f"--init {ckpt_dir}: its {key} differs from the demo model's")
    sd = {k: v.float() for k, v in checkpoint.read_state_dict(ckpt_dir).items()}
    with torch.no_grad():
        m.load_state_dict({k: v.to(next(m.parameters()).device) for k, v in sd.items()}, strict=True)
    return os.path.basename(os.path.normpath(ckpt_dir))

"""bench/write_full_checkpoint.py (the start-up bench's checkpoint) on the tiny config: the
released layout that the reference and dsocr load, every tensor of the tiny checkpoint present
with its shape, bf16, drawn by random_init's rule (not the tiny checkpoint's own values)."""
import json
import os
import subprocess
import sys

import torch

from dsocr_ref import checkpoint
from dsocr_ref.paths import REPO

TINY = os.path.join(REPO, "tests", "goldens", "tiny-ckpt")


def test_tiny_config_written_in_released_layout(tmp_path):
    out = tmp_path / "ckpt"
    subprocess.run([sys.executable, os.path.join(REPO, "bench", "write_full_checkpoint.py"), str(out),
                    "--config", os.path.join(TINY, "config.json"), "--tokenizer", os.path.join(TINY, "tokenizer.json"),
                    "--device", "cpu", "--seed", "7"], check=True, capture_output=True, text=True)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json"):
        assert (out / f).is_file(), f
    with open(out / "model.safetensors.index.json") as f:
        index = json.load(f)
    got, want = checkpoint.read_state_dict(str(out)), checkpoint.read_state_dict(TINY)
    assert sorted(got) == sorted(want)
    assert sorted(index["weight_map"]) == sorted(got)
    assert index["metadata"]["total_size"] == sum(v.numel() * 2 for v in got.values())
    for k, v in got.items():
        assert v.dtype == torch.bfloat16 and v.shape == want[k].shape, k
    differs = [k for k in got if not torch.equal(got[k], want[k])]
    assert len(differs) > len(got) // 2  # seed 7, not the tiny checkpoint's 1234 (with its EOS tweak)
    m, c = checkpoint.load(str(out))
    assert c.vocab_size == json.load(open(os.path.join(TINY, "config.json")))["vocab_size"]

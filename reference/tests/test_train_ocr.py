"""The demo model's training script, on the CPU: two steps from scratch, then two more resumed from
the saved state; the exported checkpoint loads as the official layout and keeps the demo config."""
import json
import os

import pytest
import torch

from dsocr_ref import checkpoint, demo_model, small_tokenizer, synth, train_ocr

pytestmark = pytest.mark.skipif(not synth.find_fonts() or not os.path.exists("/usr/share/dict/american-english"),
                                reason="fonts or word list missing (scripts/setup.sh installs fonts-dejavu-core, "
                                       "fonts-liberation, fonts-freefont-ttf, wamerican)")


@pytest.fixture(scope="module")
def setup_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    assets = root / "assets"
    synth.copy_assets(str(assets))
    tok = small_tokenizer.train_small_tokenizer(small_tokenizer.default_corpus(3000, 0), vocab_size=300)
    small_tokenizer.write(tok, str(root / "tok"))
    return root, assets


def run(root, assets, state, out, steps, extra=()):
    train_ocr.main(["--assets", str(assets), "--tokenizer", str(root / "tok"), "--state", state, "--out", str(out),
                    "--batch", "2", "--workers", "0", "--eval-n", "2", "--max-steps", str(steps), "--device", "cpu",
                    "--eval-every", "1000000", "--eval-max-new", "4", *extra])


def test_train_resume_export(setup_dirs):
    root, assets = setup_dirs
    run(root, assets, "", root / "a", 2)
    meta = json.load(open(root / "a" / "meta.json"))
    assert meta["step"] == 2 and meta["calls"] == 1
    log = [json.loads(x) for x in open(root / "a" / "log.jsonl")]
    assert any("cer" in r for r in log)
    for fn in ("state_model", "state_m", "state_v"):
        assert (root / "a" / f"{fn}.safetensors").stat().st_size > 0
    assert (root / "a" / "curve.png").stat().st_size > 0

    run(root, assets, str(root / "a"), root / "b", 2)
    meta = json.load(open(root / "b" / "meta.json"))
    assert meta["step"] == 4 and meta["calls"] == 2
    assert len([r for r in map(json.loads, open(root / "b" / "log.jsonl")) if "cer" in r]) == 2

    m, c = checkpoint.load(str(root / "b" / "ckpt"))
    cfg = json.load(open(root / "b" / "ckpt" / "config.json"))
    assert cfg["dsocr_demo"]["mode"] == demo_model.DEMO_MODE
    assert c.hidden_size == demo_model.LM["hidden_size"] and c.num_experts_per_tok == 2
    assert (root / "b" / "ckpt" / "tokenizer.json").exists()
    # the state's weights are the exported ones (bf16 both)
    sd = checkpoint.read_state_dict(str(root / "b" / "ckpt"))
    from safetensors.torch import load_file
    st = load_file(str(root / "b" / "state_model.safetensors"))
    k = "model.layers.1.mlp.gate.weight"
    assert torch.equal(sd[k], st[k])


def test_ctc_head_is_saved_and_resumed(setup_dirs):
    """--ctc: the auxiliary head's weights and moments travel with the state, outside the model's
    checkpoint; a resumed run starts from them."""
    from safetensors.torch import load_file
    root, assets = setup_dirs
    run(root, assets, "", root / "c", 2, ["--ctc", "0.5"])
    head = load_file(str(root / "c" / "state_ctc_head.safetensors"))
    assert set(head) == {"proj.weight", "proj.bias"}
    assert any(k.startswith("ctc_head.") for k in load_file(str(root / "c" / "state_m.safetensors")))
    assert json.load(open(root / "c" / "meta.json"))["ctc"] == 0.5
    assert not any("ctc" in k for k in checkpoint.read_state_dict(str(root / "c" / "ckpt")))
    run(root, assets, str(root / "c"), root / "d", 1, ["--ctc", "0.5"])
    assert json.load(open(root / "d" / "meta.json"))["step"] == 3
    after = load_file(str(root / "d" / "state_ctc_head.safetensors"))
    step = (after["proj.weight"] - head["proj.weight"]).abs().max()
    assert 0 < step < 1e-3  # one warm-up step on from the saved head (a fresh head differs by ~0.1)


def test_cer():
    assert train_ocr.cer("abc", "abc") == 0
    assert train_ocr.cer("abd", "abc") == pytest.approx(1 / 3)
    assert train_ocr.cer("", "abcd") == 1
    assert train_ocr.cer("xabc", "abc") == pytest.approx(1 / 3)


def test_dsocr_reads_the_exported_checkpoint_as_the_reference_does(setup_dirs, tmp_path):
    """The C++ engine (dsocr ocr on PoCL) generates the same ids as the reference model from the
    checkpoint the training script exports: the demo layout loads, and CER measured through either
    is the same."""
    import subprocess
    import sys as _sys
    from test_tokenizer_released import build_dir
    from dsocr_ref import generate, preprocess, small_tokenizer as st
    root, assets = setup_dirs
    ckpt = root / "b" / "ckpt"
    if not (ckpt / "config.json").exists():
        run(root, assets, "", root / "b", 1)
    exe = os.path.join(build_dir(), "dsocr")
    assert os.path.exists(exe), f"{exe} is missing: build dsocr first"
    m, c = checkpoint.load(str(ckpt))
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    sid = st.special_ids(tok)
    prompt = [sid["bos"]] + [sid["image"]] * train_ocr.N_IMAGE_TOKENS + tok.encode(train_ocr.PROMPT_AFTER_IMAGE).ids
    split = synth.Split(synth.find_fonts([str(assets)]), synth.load_words(str(assets / "words.txt")))
    want = {}
    for i, (im, _, _) in enumerate(synth.heldout_set(2, split=split)):
        im.save(tmp_path / f"{i}.png")
        g, _, _ = preprocess.views(im, "tiny")
        with torch.no_grad():
            want[f"{i}.png"] = generate.generate(m, torch.tensor(prompt), m.vision_embeddings(g), sid["image"],
                                                 max_new_tokens=12, eos_id=sid["eos"])
    r = subprocess.run([exe, "ocr", "--model", str(ckpt), "--mode", "tiny", "--task", "free", "--max-new-tokens", "12",
                        "--ngram", "0", "--format", "json", "--quiet", "--device", "pocl",
                        str(tmp_path / "0.png"), str(tmp_path / "1.png")], capture_output=True, text=True,
                       env={**os.environ, "DSOCR_CACHE": "0"})
    assert r.returncode == 0, r.stderr
    got = {os.path.basename(j["source"]): j["generated_ids"] for j in map(json.loads, r.stdout.splitlines())}
    assert got == want
    # eval_cer --reference reads the same images through the reference: the same ids, and a score
    from dsocr_ref import eval_cer
    (tmp_path / "labels.jsonl").write_text("".join(json.dumps({"file": f, "text": "x", "level": 0}) + "\n"
                                                   for f in sorted(want)))
    eval_cer.main([str(tmp_path / "labels.jsonl"), str(tmp_path / "ref.jsonl"), "--reference", str(ckpt),
                   "--max-new-tokens", "12", "--json", str(tmp_path / "s.json")])
    ref = {os.path.basename(j["source"]): j["generated_ids"] for j in map(json.loads, open(tmp_path / "ref.jsonl"))}
    assert ref == want and json.load(open(tmp_path / "s.json"))["all"]["n"] == 2


def test_eval_cer_scores_dsocr_json(tmp_path):
    from dsocr_ref import eval_cer
    (tmp_path / "labels.jsonl").write_text(
        json.dumps({"file": "000.png", "text": "abc", "level": 1}) + "\n" +
        json.dumps({"file": "001.png", "text": "Total | $3.50", "level": 4}) + "\n")
    (tmp_path / "pages.jsonl").write_text(
        json.dumps({"source": "/x/000.png", "text": "abd"}) + "\n" +
        json.dumps({"source": "/x/001.png", "error": "corrupt"}) + "\n")
    eval_cer.main([str(tmp_path / "labels.jsonl"), str(tmp_path / "pages.jsonl"), "--json", str(tmp_path / "s.json")])
    s = json.load(open(tmp_path / "s.json"))
    assert s["all"]["n"] == 2 and s["all"]["exact"] == 0
    assert s["all"]["cer"] == pytest.approx((1 + 13) / (3 + 13))  # a failed page counts as empty
    assert s["1"]["cer"] == pytest.approx(1 / 3)


def test_plan_from_probe_and_curriculum(setup_dirs, tmp_path):
    root, assets = setup_dirs
    train_ocr.main(["--assets", str(assets), "--tokenizer", str(root / "tok"), "--state", "", "--out",
                    str(tmp_path / "p"), "--batch", "2", "--workers", "0", "--eval-n", "2", "--max-steps", "6",
                    "--device", "cpu", "--eval-every", "1000000", "--eval-max-new", "2", "--probe-steps", "4",
                    "--minutes", "2"])
    meta = json.load(open(tmp_path / "p" / "meta.json"))
    # planned after 4 steps from the measured rate: beyond the steps done, within 2 minutes of it
    assert meta["step"] == 6 and meta["steps_per_s"] > 0
    assert 4 < meta["total_steps"] <= 4 + meta["steps_per_s"] * 120
    rng = __import__("random").Random(0)
    levels = {f: {train_ocr.curriculum_level(rng, f) for _ in range(500)} for f in (0.0, 0.2, 0.5, 0.9)}
    assert levels == {0.0: {0}, 0.2: {0, 1}, 0.5: {0, 1, 2, 3}, 0.9: {0, 1, 2, 3, 4}}


def test_scale_penalty():
    import torch
    assert float(train_ocr.scale_penalty(torch.tensor(3.9), 2.0)) == 0.0  # RMS below 2: no penalty
    assert abs(float(train_ocr.scale_penalty(torch.tensor(6.0), 2.0)) - 4.0) < 1e-6  # (6 - 4)²
    x = torch.tensor(9.0, requires_grad=True)
    train_ocr.scale_penalty(x, 2.0).backward()
    assert float(x.grad) == 10.0  # 2 (9 - 4): pushes the scale down
    assert float(train_ocr.scale_penalty(torch.tensor(100.0), 0)) == 0.0  # off


def test_private_assets_survive_the_originals(setup_dirs):
    # the run reads its own copy: removing the carried folder mid-run must not reach the workers
    _, assets = setup_dirs
    src = assets.parent / "assets-carried"
    src.mkdir()
    for name in ("words.txt", sorted(os.listdir(assets))[0]):
        (src / name).write_bytes((assets / name).read_bytes())
    dst = train_ocr.private_assets(str(src))
    assert os.path.realpath(dst) != os.path.realpath(src)
    for name in os.listdir(src):
        (src / name).unlink()
    assert sorted(os.listdir(dst)) == sorted(["words.txt", sorted(os.listdir(assets))[0]])
    assert open(os.path.join(dst, "words.txt"), "rb").read() == (assets / "words.txt").read_bytes()


def test_init_from_a_checkpoint(setup_dirs):
    """--init: a fresh run starts from an exported checkpoint's weights (fresh optimiser), and a
    checkpoint of another configuration is refused."""
    root, assets = setup_dirs
    ckpt = root / "b" / "ckpt"
    if not (ckpt / "config.json").exists():
        run(root, assets, "", root / "b", 1)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(root / "tok" / "tokenizer.json"))
    ids, cfg = train_ocr.demo_setup(tok)
    m, _ = train_ocr.fresh_model(cfg, 99, torch.device("cpu"), 1e-3)
    sd = checkpoint.read_state_dict(str(ckpt))
    k = "model.layers.1.mlp.gate.weight"
    assert not torch.equal(m.state_dict()[k], sd[k].float())
    assert train_ocr.init_from_checkpoint(m, str(ckpt), cfg) == "ckpt"
    assert all(torch.equal(m.state_dict()[n], v.float()) for n, v in sd.items())
    other = json.loads(json.dumps(cfg))
    other["language_config"]["hidden_size"] += 64
    with pytest.raises(ValueError, match="language_config"):
        train_ocr.init_from_checkpoint(m, str(ckpt), other)
    run(root, assets, "", root / "e", 1, ["--init", str(ckpt)])
    meta = json.load(open(root / "e" / "meta.json"))
    assert meta["init"] == "ckpt" and meta["step"] == 1

#!/usr/bin/env python3
"""Regenerates the committed seed corpus fuzz/corpus/<stem>/ from the repository's own files plus
small hand-made valid and broken inputs. Needs /usr/bin/python3 with Pillow (python3-pil) and
h5py (python3-h5py) for the image and golden seeds. Deterministic; run from anywhere."""
import io, json, os, shutil, struct, zlib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus"
ckpt = root / "tests" / "goldens" / "tiny-ckpt"


def put(stem, name, data):
    d = out / stem
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def st(header, data=b"", force_len=None):
    h = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(h) if force_len is None else force_len) + h + data


# ---- safetensors
f32 = struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, 7)
put("safetensors", "valid_f32.safetensors", st({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, f32))
put("safetensors", "valid_mixed.safetensors", st({
    "__metadata__": {"format": "pt"},
    "a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
    "b": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [6, 10]},
    "c": {"dtype": "I64", "shape": [1], "data_offsets": [10, 18]},
    "e": {"dtype": "F32", "shape": [0, 4], "data_offsets": [18, 18]},
    "s": {"dtype": "BOOL", "shape": [], "data_offsets": [18, 19]}}, bytes(range(19))))
put("safetensors", "bad_overlap.safetensors", st({
    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))
put("safetensors", "bad_dtype.safetensors", st({"a": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}}, bytes(2)))
put("safetensors", "bad_huge_shape.safetensors",
    st({"a": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 4]}}, bytes(4)))
put("safetensors", "bad_header_len.safetensors", st({"a": 1}, b"", force_len=1 << 40))
put("safetensors", "bad_not_json.safetensors", st(b"{\"a\": [1, 2", b""))
real = (ckpt / "model-00001-of-000001.safetensors").read_bytes()
hlen = struct.unpack("<Q", real[:8])[0]
put("safetensors", "real_header_no_data.safetensors", real[:8 + hlen])  # every offset past the end

# ---- safetensors_index (the fuzz target's folder has a.safetensors {x, y} and b.safetensors {z})
put("safetensors_index", "valid.json", json.dumps(
    {"metadata": {"total_size": 42}, "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}}))
put("safetensors_index", "bad_traversal.json", json.dumps({"weight_map": {"x": "../a.safetensors"}}))
put("safetensors_index", "bad_missing_tensor.json", json.dumps({"weight_map": {"q": "a.safetensors"}}))
put("safetensors_index", "bad_missing_shard.json", json.dumps({"weight_map": {"x": "c.safetensors"}}))
put("safetensors_index", "bad_types.json", json.dumps({"weight_map": {"x": 3}}))
put("safetensors_index", "real_index.json", (root / "tests/data/official/deepseek-ocr/model.safetensors.index.json").read_bytes()[:4000])

# ---- config
put("config", "tiny_ckpt.json", (ckpt / "config.json").read_bytes())
put("config", "official_deepseek_ocr.json", (root / "tests/data/official/deepseek-ocr/config.json").read_bytes())
put("config", "official_deepseek_ocr2.json", (root / "tests/data/official/deepseek-ocr-2/config.json").read_bytes())
put("config", "empty_object.json", "{}")
put("config", "bad_types.json", '{"hidden_size": "1280", "vocab_size": -1, "use_mla": 1}')
put("config", "bad_zero_patch.json",
    '{"vision_config": {"width": {"clip-l-14-224": {"width": 1024, "heads": 16, "patch_size": 0}}}}')

# ---- tokenizer_json: the real one and small hand-made ones
put("tokenizer_json", "tiny_ckpt.json", (ckpt / "tokenizer.json").read_bytes())
tj = json.loads((ckpt / "tokenizer.json").read_bytes())
small = dict(tj)
small["model"] = dict(tj["model"])
keep = {k: v for k, v in tj["model"]["vocab"].items() if v < 300}
small["model"]["vocab"] = keep
small["model"]["merges"] = [m for m in tj["model"]["merges"][:50]]
small["added_tokens"] = tj["added_tokens"][:4]
put("tokenizer_json", "small_bpe.json", json.dumps(small))
bad = dict(small)
bad["normalizer"] = {"type": "NFC"}
put("tokenizer_json", "bad_normalizer.json", json.dumps(bad))
put("tokenizer_json", "bad_model.json", json.dumps({"model": {"type": "WordPiece", "vocab": {}}}))

# ---- tokenizer: first byte even = encode the rest, odd = decode the rest as int32 ids
texts = {
    "ascii": "Hello, world! <image>\n<|grounding|>Convert the document to markdown.",
    "cjk": "表格 第一行 \u3000 日本語のテキスト 한국어",
    "emoji_zwj": "\U0001F468\u200D\U0001F469\u200D\U0001F467 \U0001F44D\U0001F3FD",
    "combining": "e\u0301 a\u0308 \u0645\u0631\u062d\u0628\u0627 Привет",
    "latex_md": "$$\\frac{a}{b}$$ | a | b |\n|---|---|\n```py\nx = 1\n```\n\t\t  ",
}
for k, v in texts.items():
    put("tokenizer", "encode_" + k, b"\x00" + v.encode())
put("tokenizer", "encode_invalid_utf8", b"\x00ab\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98")
put("tokenizer", "decode_ids", b"\x01" + struct.pack("<8i", 0, 1, 100, 200, 128815, -1, 2**31 - 1, 33))

# ---- golden: the two smallest op goldens, and broken copies
ops = sorted((root / "tests/goldens/ops").glob("*.h5"), key=lambda p: p.stat().st_size)[:2]
for p in ops:
    put("golden", p.name, p.read_bytes())
g = ops[0].read_bytes()
put("golden", "truncated.h5", g[: len(g) // 2])
flip = bytearray(g)
for i in range(200, len(flip), 997):
    flip[i] ^= 0x5A
put("golden", "bitflips.h5", bytes(flip))
try:
    import h5py, numpy as np
    b = io.BytesIO()
    with h5py.File(b, "w") as f:
        f.attrs["format"] = "dsocr-golden"
        f.attrs["version"] = 1
        f.attrs["op"] = "softmax"
        f.attrs["axes"] = np.array([1, 2], dtype=np.int64)
        f.attrs["eps"] = 1e-6
        f.attrs["names"] = np.array([b"a", b"b"])
        f.create_dataset("inputs/x", data=np.arange(6, dtype=np.float32).reshape(2, 3))
        f.create_dataset("inputs/ids", data=np.arange(3, dtype=np.int64))
        f.create_dataset("taps/blocks/0", data=np.zeros((2, 2), dtype=np.uint8), compression="gzip", chunks=True)
        f.create_dataset("outputs/y", data=np.ones(4, dtype=np.float16))
        f.create_dataset("outputs/s", data=np.array([b"str"]))
    put("golden", "handmade.h5", b.getvalue())
except ImportError:
    print("h5py missing: golden/handmade.h5 kept as it is")

# ---- image
try:
    from PIL import Image
    def img(mode, size, fmt, **kw):
        im = Image.new("RGB", size)
        px = im.load()
        for y in range(size[1]):
            for x in range(size[0]):
                px[x, y] = (x * 37 % 256, y * 53 % 256, (x + y) * 11 % 256)
        im = im.convert(mode)
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()
    put("image", "rgb.png", img("RGB", (13, 7), "PNG"))
    put("image", "palette.png", img("P", (9, 5), "PNG"))
    put("image", "grey_alpha.png", img("LA", (6, 6), "PNG"))
    put("image", "interlaced.png", img("RGBA", (11, 9), "PNG"))  # Pillow writes no Adam7; libpng tests that
    put("image", "rgb.jpg", img("RGB", (17, 9), "JPEG", quality=90))
    put("image", "progressive.jpg", img("RGB", (17, 9), "JPEG", quality=80, progressive=True))
    put("image", "grey.jpg", img("L", (16, 16), "JPEG"))
    put("image", "cmyk.jpg", img("CMYK", (10, 6), "JPEG"))
    j = img("RGB", (32, 32), "JPEG", quality=95)
    put("image", "truncated.jpg", j[: len(j) * 2 // 3])
except ImportError:
    print("Pillow missing: image seeds kept as they are")
for p in ["gradient.png", "grayscale.png", "rgba.png"]:
    put("image", p, (root / "tests/goldens/images" / p).read_bytes())
rot = (root / "tests/goldens/images/exif_rot6.jpg").read_bytes()
put("image", "exif_rot6_head.jpg", rot[:3000])  # the EXIF block and a truncated scan
png = (out / "image" / "gradient.png").read_bytes()
put("image", "truncated.png", png[: len(png) // 2])


# ---- pdf: small hand-written documents (text, vector drawing, two pages, broken xref)
def pdf(pages, fix_xref=True):
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for content, box in pages:
        n = len(objs) + 1
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox {box} /Contents {n + 1} 0 R "
                    f"/Resources << /Font << /F1 {n + 2} 0 R >> >> >>")
        objs.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
        objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        kids.append(f"{n} 0 R")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    body = b"%PDF-1.4\n"
    offs = []
    for i, o in enumerate(objs):
        offs.append(len(body))
        body += f"{i + 1} 0 obj\n{o}\nendobj\n".encode()
    xref = len(body)
    body += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for o in offs:
        body += f"{o if fix_xref else o + 7:010d} 00000 n \n".encode()
    body += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body

text = "BT /F1 24 Tf 20 100 Td (Hello dsocr) Tj ET"
draw = "0.2 0.4 0.8 rg 10 10 80 40 re f 1 0 0 RG 4 w 0 0 m 200 150 l S"
put("pdf", "text.pdf", pdf([(text, "[0 0 200 150]")]))
put("pdf", "two_pages.pdf", pdf([(text, "[0 0 200 150]"), (draw, "[0 0 120 300]")]))
put("pdf", "bad_xref.pdf", pdf([(draw, "[0 0 100 100]")], fix_xref=False))
put("pdf", "huge_mediabox.pdf", pdf([(draw, "[0 0 1e9 1e9]")]))
p = pdf([(text, "[0 0 200 150]")])
put("pdf", "truncated.pdf", p[: len(p) // 2])

total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
print(f"corpus: {sum(1 for f in out.rglob('*') if f.is_file())} files, {total / 1024:.0f} KiB")

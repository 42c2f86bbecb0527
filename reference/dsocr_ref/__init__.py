"""dsocr_ref: the PyTorch (CPU, fp32) reference of DeepSeek-OCR v1 and the golden-file writer.

Modules: ops (the contract's op vocabulary), config (official config.json parsing, tiny config),
model (DeepSeek-OCR v1 modules with the official state_dict names), preprocess (Pillow-exact image
views), tokenizer (tiny byte-level BPE with the DeepSeek-V3 pre-tokenizer), checkpoint (random
checkpoint writer/loader in the official layout), generate (greedy decoding with the no-repeat
n-gram rule), h5 (golden file writer), goldens (the golden cases; `python -m dsocr_ref.goldens`), ocr2
(DeepSeek-OCR-2's vision path: the Qwen2 encoder with learned queries; config/checkpoint/preprocess
handle v2 too), goldens_ocr2 (v2 golden cases into a folder of your choice;
`python -m dsocr_ref.goldens_ocr2 --out DIR`).
"""

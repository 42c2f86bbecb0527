#!/usr/bin/env bash
# The first command: set up a fresh machine, build, and run the main job, `dsocr ocr`, on an
# example page. With no model given (DSOCR_MODEL or a downloaded deepseek-ai/DeepSeek-OCR in the
# Hugging Face cache), it runs on the bundled tiny checkpoint: random weights that do not read
# text, which prove the whole pipeline (image views, encoder, decoder, streaming output) end to end.
# It builds only the dsocr command (scripts/test.sh builds and runs the test suite).
# The tiny checkpoint's random weights never emit the end-of-sequence token, so its run asks for
# 64 tokens and stops there, as asked: dsocr reports that as information, not as a warning (which
# it gives when a page stops at the default limit or the context without an end-of-sequence token).
#   bash scripts/run.sh [IMAGE_OR_PDF ...] [dsocr ocr options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target dsocr
export RUSTICL_ENABLE=${RUSTICL_ENABLE:-llvmpipe}
build=${BUILD_DIR:-build}
"$build/dsocr" devices
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests/goldens/images/text_page.png)
hf_cache=${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}
if [ -z "${DSOCR_MODEL:-}" ] && [ ! -d "$hf_cache/models--deepseek-ai--DeepSeek-OCR" ]; then
  echo "== no DeepSeek-OCR checkpoint found (huggingface-cli download deepseek-ai/DeepSeek-OCR, or set DSOCR_MODEL)."
  echo "== Running the bundled tiny checkpoint instead: its weights are random, so the text below is"
  echo "== meaningless; it shows the pipeline running end to end."
  exec "$build/dsocr" ocr --model tests/goldens/tiny-ckpt --mode tiny --task free --max-new-tokens 64 "${args[@]}"
fi
exec "$build/dsocr" ocr "${args[@]}"

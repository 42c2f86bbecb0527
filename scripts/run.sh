#!/usr/bin/env bash
# The first command: set up a fresh machine, build, and run the main job, `dsocr ocr`, on an
# example image. With no model given (DSOCR_MODEL or a downloaded deepseek-ai/DeepSeek-OCR in the
# Hugging Face cache), dsocr runs the demo model that comes with it (models/dsocr-demo: a 3.7 M
# parameter DeepSeek-OCR trained on synthetic printed text, docs/training.md), which reads short
# printed lines, and prints their text. The default image is examples/line.png.
# It builds only the dsocr command (scripts/test.sh builds and runs the test suite).
#   bash scripts/run.sh [IMAGE_OR_PDF ...] [dsocr ocr options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target dsocr
export RUSTICL_ENABLE=${RUSTICL_ENABLE:-llvmpipe}
build=${BUILD_DIR:-build}
"$build/dsocr" devices
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(examples/line.png)
hf_cache=${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}
if [ -z "${DSOCR_MODEL:-}" ] && [ ! -d "$hf_cache/models--deepseek-ai--DeepSeek-OCR" ]; then
  echo "== no DeepSeek-OCR checkpoint found (huggingface-cli download deepseek-ai/DeepSeek-OCR, or set DSOCR_MODEL)."
  echo "== dsocr runs its demo model instead (models/dsocr-demo): it reads short printed lines, roughly."
fi
exec "$build/dsocr" ocr "${args[@]}"

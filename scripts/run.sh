#!/usr/bin/env bash
# The first command: set up a fresh machine, build, and run the main job available today.
# (dsocr ocr is not implemented yet: this lists the devices and compiles every kernel.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export RUSTICL_ENABLE=${RUSTICL_ENABLE:-llvmpipe}
build=${BUILD_DIR:-build}
"$build/dsocr" devices
"$build/dsocr" warmup

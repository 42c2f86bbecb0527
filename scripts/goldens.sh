#!/usr/bin/env bash
# Sets up the Python reference (reference/setup.sh) and regenerates every golden file into a
# folder (default tests/goldens): bash scripts/goldens.sh [OUT_DIR] [extra args of dsocr_ref.goldens]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/tests/goldens}"
shift || true
bash "$root/reference/setup.sh"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$root/reference"
exec .venv/bin/python -m dsocr_ref.goldens --out "$out" "$@"

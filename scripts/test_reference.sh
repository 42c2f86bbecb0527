#!/usr/bin/env bash
# The PyTorch reference suite: sets up reference/ (Debian's torch + reference/.venv, through
# reference/setup.sh), then runs its pytest suite: ops against torch's own implementations and
# independent formulations, model structure, tokenizer, preprocessing, the goldens contract, and
# the exact regeneration of tests/goldens (regenerated once into a temporary folder and compared).
# Prints the cross-check table at the end. Exit status: pytest's.
# Extra arguments go to pytest (e.g. -k regeneration, -s).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/reference/setup.sh"
cd "$root/reference"
t0=$SECONDS
status=0
.venv/bin/python -m pytest -q -rfEs --durations=5 -p no:cacheprovider tests "$@" || status=$?
echo "reference suite: pytest exit status $status in $((SECONDS - t0)) s"
exit "$status"

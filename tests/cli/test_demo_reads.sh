# ctest: once
# The demo model that comes with dsocr (models/dsocr-demo) reads: dsocr ocr with no --model (no
# downloaded checkpoint, no $DSOCR_MODEL) says on stderr that it runs the demo model, takes the
# checkpoint's mode and prompt, and reads the first 30 images of the demo's held-out set
# (tests/data/demo-heldout: held-out fonts and words, synth generator version 2) within the bars
# below. Random weights score a CER near 1. The bars are where the shipped model stands
# (models/dsocr-demo/README.md: CER 0.34 on these 30; 0.04 on their words, 0.10 on their short
# lines, each held to 0.20),
# not issue 14's goal of 0.10, which needs more training.
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DATA=$SRC/tests/data/demo-heldout
export HF_HOME=$WORK/hf-empty
unset DSOCR_MODEL DSOCR_DEMO_MODEL HF_HUB_CACHE HUGGINGFACE_HUB_CACHE
"$DSOCR" ocr --device "$DEVICE" --format json --max-new-tokens 128 "$DATA"/*.png >"$WORK/pages.jsonl" 2>"$WORK/err"
expect_rc "dsocr ocr with the default model" 0 $?
expect_contains "stderr names the demo model" "$WORK/err" "demo model"
expect_contains "the checkpoint's mode and prompt" "$WORK/err" "mode tiny"
n=$(grep -c '"source"' "$WORK/pages.jsonl")
[ "$n" = 30 ] && pass "30 pages read" || fail "30 pages read: $n"
PYTHONPATH=$SRC/reference python3 -m dsocr_ref.eval_cer "$DATA/labels.jsonl" "$WORK/pages.jsonl" --json "$WORK/cer.json" >/dev/null
expect_rc "eval_cer" 0 $?
python3 - "$WORK/cer.json" <<'PY' && pass "CER within the bars" || fail "CER within the bars"
import json, sys
s = json.load(open(sys.argv[1]))
print("CER all %.3f, 1-3 words %.3f, short lines %.3f, exact %.2f"
      % (s["all"]["cer"], s["0"]["cer"], s["1"]["cer"], s["all"]["exact"]))
sys.exit(0 if s["all"]["cer"] <= 0.40 and s["0"]["cer"] <= 0.20 and s["1"]["cer"] <= 0.20 else 1)
PY
finish

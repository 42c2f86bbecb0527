# dsocr convert and dsocr ocr on what it writes (tiny checkpoint): a converted int4 checkpoint
# reads the page with the same ids as quantising while loading, its quantised matrices stay as
# stored under the default --weights, and failures are named (exit 1, nothing written over).
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CKPT=$SRC/tests/goldens/tiny-ckpt
PAGE=$SRC/tests/goldens/images/text_page.png
FAST=(--device "$DEVICE" --mode tiny --max-new-tokens 16 --format json)
ids() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["generated_ids"])' "$1"; }

"$DSOCR" convert --weights int4 "$CKPT" "$WORK/q4" >"$WORK/conv.out" 2>"$WORK/conv.err"
expect_rc "convert int4" 0 $?
expect_contains "convert report" "$WORK/conv.err" "^dsocr convert: .* \(int4\): [0-9]+ tensors converted, [0-9]+ copied"
[ -s "$WORK/conv.out" ] && fail "convert: output on stdout" || pass "convert: nothing on stdout"
for f in model.safetensors config.json tokenizer.json tokenizer_config.json; do
  [ -f "$WORK/q4/$f" ] && pass "convert wrote $f" || fail "convert wrote no $f"
done
expect_contains "config names the quantisation" "$WORK/q4/config.json" '"bits": 4'

"$DSOCR" ocr --model "$CKPT" --weights int4 "${FAST[@]}" "$PAGE" >"$WORK/onload.json" 2>"$WORK/onload.err"
expect_rc "ocr quantising on load" 0 $?
expect_contains "load says int4" "$WORK/onload.err" "loaded in [0-9.]+ s, int4 weights"
"$DSOCR" ocr --model "$WORK/q4" "${FAST[@]}" "$PAGE" >"$WORK/file.json" 2>"$WORK/file.err"
expect_rc "ocr on the converted checkpoint" 0 $?
a=$(ids "$WORK/onload.json") b=$(ids "$WORK/file.json")
[ -n "$a" ] && [ "$a" = "$b" ] && pass "same ids ($a)" || fail "ids differ: on load $a, from the file $b"
"$DSOCR" ocr --model "$CKPT" "${FAST[@]}" "$PAGE" >"$WORK/bf16.json" 2>/dev/null
[ "$(ids "$WORK/bf16.json")" != "" ] && pass "bf16 run" || fail "bf16 run"

"$DSOCR" convert --weights int8 "$CKPT" "$WORK/q4" >"$WORK/again.out" 2>&1
expect_rc "convert into a checkpoint" 1 $?
expect_contains "convert into a checkpoint: message" "$WORK/again.out" "already holds a checkpoint"
"$DSOCR" convert --weights int8 "$WORK/nowhere" "$WORK/q8" >"$WORK/missing.out" 2>&1
expect_rc "convert a missing source" 1 $?
expect_contains "convert a missing source: message" "$WORK/missing.out" "nowhere"
[ -e "$WORK/q8" ] && fail "a failed convert left $WORK/q8" || pass "a failed convert writes nothing"
finish

# Determinism: the same inputs give byte-identical output across runs of one process and across
# processes, with the buffer pool on or off and with a cold or warm program cache. (Across
# platforms, every platform's generation equals the PyTorch reference's token for token:
# cli_parity_goldens' model_generate cases and test_ocr's golden page.)
source "$(dirname "$0")/lib.sh" "$@"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
IMGS="$SRC/tests/goldens/images"
ocr() {
  "$DSOCR" ocr --model "$SRC/tests/goldens/tiny-ckpt" --mode tiny --task free --max-new-tokens 16 --device "$DEVICE" \
    --quiet "$@" "$IMGS/gradient.png" "$IMGS/exif_rot6.jpg" "$IMGS/gradient.png"
}
ocr --format text >"$WORK/a.txt" 2>"$WORK/a.err"
expect_rc "first run" 0 $?
ocr --format text >"$WORK/b.txt" 2>/dev/null
cmp -s "$WORK/a.txt" "$WORK/b.txt" && pass "a second process gives the same bytes" || fail "second process differs"
DSOCR_POOL=0 ocr --format text >"$WORK/c.txt" 2>/dev/null
cmp -s "$WORK/a.txt" "$WORK/c.txt" && pass "buffer pool off: the same bytes" || fail "buffer pool off differs"
# A cold program cache (every kernel compiled in this process); not on rusticl, whose llvmpipe
# compiler takes a minute or two for it (cli_ocr's cold run covers compiling there).
if [ "$DEVICE" != rusticl ]; then
  DSOCR_CACHE_DIR=$WORK/cold ocr --format text >"$WORK/d.txt" 2>/dev/null
  cmp -s "$WORK/a.txt" "$WORK/d.txt" && pass "cold program cache: the same bytes" || fail "cold program cache differs"
fi
# Within one process: the first and the last input are the same image.
ocr --format json >"$WORK/a.json" 2>/dev/null
strip() { sed -E 's/"(timings|memory)":\{[^}]*\}//g' "$1"; }
first=$(sed -n 1p "$WORK/a.json" | sed -E 's/"(timings|memory)":\{[^}]*\}//g')
last=$(sed -n 3p "$WORK/a.json" | sed -E 's/"(timings|memory)":\{[^}]*\}//g')
[ -n "$first" ] && [ "$first" = "$last" ] && pass "the same page twice in one process: identical records" \
  || fail "the same page twice in one process differs"
ocr --format json >"$WORK/b.json" 2>/dev/null
[ "$(strip "$WORK/a.json")" = "$(strip "$WORK/b.json")" ] && pass "JSON identical but for timings and memory" \
  || fail "JSON records differ between runs"
finish

# A device that cannot build a tuned kernel variant: here sdpa.cl is made to refuse flash tiles
# larger than 2 x 2 (as an unusual compiler or a small register file would). Attention falls back
# to smaller tiles, says so, and every sdpa golden still passes; a kernel whose portable variant
# fails too reports the build log (test_build_error.sh covers a plain build failure).
source "$(dirname "$0")/lib.sh" "$@"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$WORK/kernels"
cp "$SRC"/kernels/*.cl "$WORK/kernels/"
{
  printf '#if defined(FL_RQ) && defined(FL_RK) && FL_RQ * FL_RK > 4\n#error "flash tiles over 2x2 refused (test)"\n#endif\n'
  cat "$SRC/kernels/sdpa.cl"
} >"$WORK/kernels/sdpa.cl.new"
mv "$WORK/kernels/sdpa.cl.new" "$WORK/kernels/sdpa.cl"

DSOCR_CACHE=0 DSOCR_KERNEL_DIR=$WORK/kernels "$DSOCR" parity "$SRC"/tests/goldens/ops/sdpa_*.h5 --device "$DEVICE" \
  >"$WORK/out" 2>&1
expect_rc "sdpa goldens with the tuned tiles refused" 0 $?
expect_contains "every sdpa golden passes" "$WORK/out" "^[1-9][0-9]* passed, 0 failed"
expect_contains "the fallback is reported" "$WORK/out" "note: kernels/sdpa.cl sdpa_flash_f32 with .*FL_RQ=[0-9]+.* is not usable on .*flash tiles over 2x2 refused|note: kernels/sdpa.cl sdpa_flash_f32 with .* is not usable on .*(error|failed)"

# Every variant refused: the error carries the build log.
{
  printf '#error "no flash tiles at all (test)"\n'
  cat "$SRC/kernels/sdpa.cl"
} >"$WORK/kernels/sdpa.cl.new"
mv "$WORK/kernels/sdpa.cl.new" "$WORK/kernels/sdpa.cl"
DSOCR_CACHE=0 DSOCR_KERNEL_DIR=$WORK/kernels "$DSOCR" parity "$SRC/tests/goldens/ops/sdpa_awkward_d17.h5" \
  --device "$DEVICE" >"$WORK/out2" 2>&1
expect_rc "no usable variant" 1 $?
expect_contains "names the file" "$WORK/out2" "building kernels/sdpa.cl for .* failed"
expect_contains "shows the build log" "$WORK/out2" "no flash tiles at all \\(test\\)"
finish

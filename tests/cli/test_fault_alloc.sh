# Device allocation failures injected at points spread over a whole `dsocr ocr` run (loading,
# vision, prefill, decode; DSOCR_FAIL_ALLOC=N fails the N-th allocation as the driver would):
# every one ends with exit 1 and a message naming what was being allocated and how much, never a
# crash; past the last allocation the run completes and its text equals the undisturbed run's.
source "$(dirname "$0")/lib.sh" "$@"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ocr() {
  "$DSOCR" ocr --model "$SRC/tests/goldens/tiny-ckpt" --mode tiny --task free --max-new-tokens 6 --device "$DEVICE" \
    --quiet "$SRC/tests/goldens/images/gradient.png"
}
ocr >"$WORK/clean.txt" 2>"$WORK/clean.err"
expect_rc "undisturbed run" 0 $?

n=1 failed=0 clean=0 completed=""
while [ $n -lt 100000 ]; do
  DSOCR_FAIL_ALLOC=$n ocr >"$WORK/out.txt" 2>"$WORK/err.txt"
  rc=$?
  if [ $rc -eq 0 ]; then completed=$n; break; fi
  failed=$((failed + 1))
  if [ $rc -eq 1 ] && grep -Eq "out of device memory allocating .+, [0-9.]+ (bytes|KiB|MiB|GiB) on .*injected: allocation #$n" "$WORK/err.txt"; then
    clean=$((clean + 1))
  else
    fail "allocation #$n: exit $rc without the expected message"
    sed 's/^/    | /' "$WORK/err.txt" | tail -5
  fi
  n=$((n * 5 / 4 + 1))
done
[ -n "$completed" ] && pass "a run past the last allocation (#$completed) completes" || fail "no run completed"
[ $failed -ge 20 ] && pass "$failed injection points tried" || fail "only $failed injection points failed"
[ $clean -eq $failed ] && pass "all $failed injected failures ended cleanly (exit 1, what and how much)" \
  || fail "$((failed - clean)) of $failed injected failures did not end cleanly"
cmp -s "$WORK/clean.txt" "$WORK/out.txt" && pass "the completed run's text equals the undisturbed run's" \
  || fail "the completed run's text differs"
DSOCR_FAIL_ALLOC=x ocr >/dev/null 2>"$WORK/bad.txt"
expect_contains "a malformed DSOCR_FAIL_ALLOC is refused" "$WORK/bad.txt" "DSOCR_FAIL_ALLOC='x': expected a positive integer"
finish

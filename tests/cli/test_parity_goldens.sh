# dsocr parity over every committed golden file (tests/goldens/ops and tests/goldens/model): every
# case must run and pass on the device under test; the closing line must count them all.
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
files=("$SRC"/tests/goldens/ops/*.h5 "$SRC"/tests/goldens/model/*.h5)
[ -e "${files[0]}" ] || { fail "no golden files under $SRC/tests/goldens"; finish; exit; }

"$DSOCR" parity "${files[@]}" --device "$DEVICE" >"$WORK/out" 2>&1
rc=$?
grep -Ev "  PASS$" "$WORK/out" | sed 's/^/    | /'
expect_rc "parity over ${#files[@]} golden files" 0 $rc
expect_contains "closing line" "$WORK/out" "^[0-9]+ passed, 0 failed$"
# every file reported at least once, none skipped
for f in "${files[@]}"; do
  grep -q "^$(basename "$f") " "$WORK/out" || fail "no result line for $(basename "$f")"
done
n_fail=$(grep -Ec " FAIL| not implemented| cannot run| ERROR" "$WORK/out")
[ "$n_fail" -eq 0 ] && pass "no failing, unrunnable or unimplemented case" || fail "$n_fail failing lines"
finish

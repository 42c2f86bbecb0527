# Shared helpers for the CLI tests: `source lib.sh "$@"` with args DSOCR_BIN DEVICE_TAG.
set -uo pipefail
DSOCR=$1
DEVICE=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
PASSES=0
pass() { echo "PASS: $1"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $1"; FAILS=$((FAILS + 1)); }
# expect_contains NAME FILE PATTERN: grep -E the pattern in the file
expect_contains() {
  if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1 (no /$3/ in output:)"; sed 's/^/    | /' "$2" | head -40; fi
}
expect_rc() {  # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1 (exit $3)"; else fail "$1: exit $3, expected $2"; fi
}
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

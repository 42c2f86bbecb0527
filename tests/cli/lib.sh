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
# A PDF of pages "W H CONTENT" (points) with a correct xref table.
make_pdf() {
  local out=$1
  shift
  local n=$# i=0 kids="" objs=()
  for ((i = 0; i < n; i++)); do kids+="$((3 + 2 * i)) 0 R "; done
  objs+=("<< /Type /Catalog /Pages 2 0 R >>" "<< /Type /Pages /Kids [$kids] /Count $n >>")
  i=0
  for page in "$@"; do
    read -r w h content <<<"$page"
    objs+=("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 $w $h] /Contents $((4 + 2 * i)) 0 R >>")
    objs+=("<< /Length ${#content} >>"$'\nstream\n'"$content"$'\nendstream')
    i=$((i + 1))
  done
  local pdf=$'%PDF-1.4\n' offs=() k
  for ((k = 0; k < ${#objs[@]}; k++)); do
    offs+=(${#pdf})
    pdf+="$((k + 1)) 0 obj"$'\n'"${objs[$k]}"$'\nendobj\n'
  done
  local xref=${#pdf}
  pdf+="xref"$'\n'"0 $((${#objs[@]} + 1))"$'\n'"0000000000 65535 f "$'\n'
  for o in "${offs[@]}"; do pdf+="$(printf '%010d' "$o") 00000 n "$'\n'; done
  pdf+="trailer"$'\n'"<< /Size $((${#objs[@]} + 1)) /Root 1 0 R >>"$'\n'"startxref"$'\n'"$xref"$'\n%%EOF\n'
  printf '%s' "$pdf" >"$out"
}
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

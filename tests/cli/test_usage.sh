# The command line of every subcommand: --help (usage on stdout, exit 0), dsocr --version, and
# bad option values as usage errors (exit 2, one clear message, nothing done). Nothing here runs
# a model or a benchmark.
source "$(dirname "$0")/lib.sh" "$@"

for cmd in ocr bench parity tune warmup devices convert; do
  for h in --help -h; do
    "$DSOCR" $cmd $h >"$WORK/help.out" 2>"$WORK/help.err"
    expect_rc "$cmd $h" 0 $?
    expect_contains "$cmd $h: usage on stdout" "$WORK/help.out" "^usage: dsocr $cmd"
    [ -s "$WORK/help.err" ] && fail "$cmd $h: stderr not empty" || pass "$cmd $h: stderr empty"
  done
  expect_contains "$cmd --help: exit status documented" "$WORK/help.out" "^Exit status: 0"
done
"$DSOCR" --help >"$WORK/top" 2>&1
expect_rc "dsocr --help" 0 $?
expect_contains "dsocr --help names --version" "$WORK/top" "dsocr --version"
expect_contains "dsocr --help: exit status" "$WORK/top" "^exit status: 0 success, 1 "

"$DSOCR" --version >"$WORK/version" 2>&1
expect_rc "dsocr --version" 0 $?
expect_contains "version and git commit" "$WORK/version" "^dsocr [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]{7,}|^dsocr [0-9.]+ \(git unknown\)"
expect_contains "OpenCL platforms listed" "$WORK/version" "^OpenCL platforms:"
expect_contains "the platform under test is listed" "$WORK/version" "^  .*[0-9]+ devices?$"
"$DSOCR" --version extra >"$WORK/v2" 2>&1
expect_rc "dsocr --version extra" 2 $?

# usage_error NAME PATTERN ARGS...: exit 2, PATTERN in the message, said once, nothing on stdout
usage_error() {
  local name=$1 pat=$2
  shift 2
  "$DSOCR" "$@" >"$WORK/u.out" 2>"$WORK/u.err"
  expect_rc "$name" 2 $?
  expect_contains "$name: message" "$WORK/u.err" "$pat"
  [ "$(wc -l <"$WORK/u.err")" -le 1 ] && pass "$name: one line" || { fail "$name: $(wc -l <"$WORK/u.err") lines"; cat "$WORK/u.err"; }
  [ -s "$WORK/u.out" ] && fail "$name: output on stdout" || pass "$name: nothing on stdout"
}
usage_error "ocr --weights int3" "--weights: unknown weight storage 'int3'" ocr --weights int3 x.png
usage_error "convert without --weights" "usage: dsocr convert --weights int8\|int4\|fp16 SRC DST" convert a b
usage_error "convert one folder" "usage: dsocr convert" convert --weights int8 a
usage_error "convert --weights f32" "--weights f32: convert writes int8, int4 or fp16" convert --weights f32 a b
usage_error "convert --weights int3" "--weights: unknown weight storage 'int3'" convert --weights int3 a b
usage_error "ocr --pages 0" "--pages '0': there is no page 0" ocr --pages 0 x.png
usage_error "ocr --dpi abc" "--dpi abc: not a number" ocr --dpi abc x.png
usage_error "ocr --max-tiles 1" "--max-tiles 1: must be in 2..9" ocr --max-tiles 1 x.png
usage_error "bench --runs abc" "--runs abc: not an integer" bench --runs abc
usage_error "bench --runs 0" "--runs 0: must be in 1\.\." bench --runs 0
usage_error "bench --weights fp8" "--weights: unknown weight storage 'fp8'" bench model --weights fp8
usage_error "tune --size abc" "--size abc: not an integer" tune --size abc
usage_error "tune --size 100" "--size 100: must be in 256..8192" tune --size 100
usage_error "tune --size 1000" "--size 1000: must be a multiple of 256" tune --size 1000
usage_error "tune --fraction 0" "--fraction: must be more than 0" tune --fraction 0
usage_error "tune --fraction x" "--fraction x: not a number" tune --fraction x
usage_error "warmup extra" "takes no arguments" warmup extra
usage_error "devices --frobnicate" "unknown option --frobnicate" devices --frobnicate
usage_error "parity without files" "usage: dsocr parity" parity
usage_error "parity --frobnicate" "unknown option --frobnicate" parity --frobnicate x.h5
finish

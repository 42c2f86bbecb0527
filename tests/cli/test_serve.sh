# dsocr serve end to end on the tiny random checkpoint (tests/goldens/tiny-ckpt): the command line,
# then three servers driven by tests/cli/serve_client.py: the official openai client (one request
# whose text equals dsocr ocr's, streamed, 8 at once) and every refusal over raw HTTP with the
# server still up after each; the queue bound (503 + Retry-After) and the timeout (504); SIGTERM
# answering the requests in flight, then exit 0.
# ctest: once (PoCL, else the first platform): the server's behaviour does not depend on the
# OpenCL platform, and rusticl's llvmpipe decodes about 7 times slower.
# The openai client is the pin of reference/requirements.txt, in reference/.venv (made here as
# reference/setup.sh makes it when missing); without the network its checks are skipped, except
# under CI=true, where that fails.
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CKPT=$SRC/tests/goldens/tiny-ckpt
IMG=$SRC/tests/goldens/images/text_page.png
export HF_HOME=$WORK/hf-empty
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE DSOCR_MODEL DSOCR_API_KEY
case $DSOCR in /*) ;; *) DSOCR=$PWD/$DSOCR ;; esac
SERVERS=""
trap 'for p in $SERVERS; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
t_start=$SECONDS

# ---- the command line (no model loaded)
"$DSOCR" serve --help >"$WORK/help.out" 2>"$WORK/help.err"
expect_rc "serve --help" 0 $?
expect_contains "serve --help: usage on stdout" "$WORK/help.out" "^usage: dsocr serve"
expect_contains "serve --help: exit status" "$WORK/help.out" "^Exit status: 0"
expect_contains "serve --help: the limits" "$WORK/help.out" "--max-image-pixels N"
"$DSOCR" --help >"$WORK/top.out" 2>&1
expect_contains "dsocr --help lists serve" "$WORK/top.out" "^  serve \[--host H\]"
serve_error() {  # NAME RC PATTERN ARGS...: exit status RC, PATTERN on stderr, nothing on stdout
  local name=$1 want=$2 pat=$3
  shift 3
  "$DSOCR" serve "$@" >"$WORK/e.out" 2>"$WORK/e.err"
  expect_rc "$name" "$want" $?
  expect_contains "$name: message" "$WORK/e.err" "$pat"
  [ -s "$WORK/e.out" ] && fail "$name: output on stdout" || pass "$name: nothing on stdout"
}
serve_error "--port 70000" 2 "--port 70000: must be in 0..65535" --port 70000
serve_error "--max-queue -1" 2 "--max-queue -1: must be in 0..100000" --max-queue -1
serve_error "--timeout-s 0" 2 "--timeout-s 0: must be in" --timeout-s 0
serve_error "empty --api-key" 2 "--api-key needs a non-empty key" --api-key=
serve_error "an input file" 2 "unexpected argument 'page.png': dsocr serve takes options only" page.png
serve_error "unknown option" 2 "unknown option --format" --format json
serve_error "a mode of the other model" 2 "--mode ocr2 is a DeepSeek-OCR-2 mode" --model "$CKPT" --mode ocr2
serve_error "a missing model" 1 "error: .*no-such-model" --model "$WORK/no-such-model"

# ---- the client's Python
PIN=$(grep -E '^openai==' "$SRC/reference/requirements.txt")
VENV=$SRC/reference/.venv
PY=$VENV/bin/python
has_pin() { "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('openai') != '${PIN#openai==}')" 2>/dev/null; }
if ! has_pin; then
  echo "installing $PIN into $VENV"
  (
    flock 9
    [ -x "$PY" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV"
    timeout 300 "$PY" -m pip install -q --disable-pip-version-check --timeout 30 "$PIN"
  ) 9<"$SRC/reference"
  has_pin || echo "could not install $PIN (no network?)"
fi
[ -x "$PY" ] || PY=python3  # the raw HTTP checks need only the standard library

# start_server NAME ARGS...: dsocr serve on a free port in the background; waits for its
# "listening on" line (sets URL and PID)
start_server() {
  local name=$1
  shift
  "$DSOCR" serve --model "$CKPT" --device "$DEVICE" --mode tiny --port 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID=$!
  SERVERS="$SERVERS $PID"
  URL=""
  for _ in $(seq 600); do
    URL=$(sed -n 's/^listening on \(http:.*\)$/\1/p' "$WORK/$name.err")
    [ -n "$URL" ] && { pass "$name: listening on $URL"; return 0; }
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "$name: no \"listening on\" line"
  sed 's/^/    | /' "$WORK/$name.err"
  return 1
}
# client NAME SCENARIO ARGS...: serve_client.py's checks, counted here
client() {
  local name=$1
  shift
  timeout 300 "$PY" "$SRC/tests/cli/serve_client.py" "$@" --url "$URL" --model "$CKPT" --image "$IMG" \
    >"$WORK/$name.log" 2>&1
  local rc=$? p f
  cat "$WORK/$name.log"
  p=$(grep -c '^PASS: ' "$WORK/$name.log")
  f=$(grep -c '^FAIL: ' "$WORK/$name.log")
  PASSES=$((PASSES + p))
  FAILS=$((FAILS + f))
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && fail "$name: serve_client.py exit $rc"
}
# wait_exit PID SECONDS: waits for PID to end, killing it (-9) after SECONDS; its status in rc
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null && echo "killed pid $1 after $2 s"
  wait "$1"
  rc=$?
}
# stop_server NAME: SIGTERM, then the exit status (0) and the log line
stop_server() {
  kill -TERM "$PID" 2>/dev/null
  wait_exit "$PID" 60
  expect_rc "$1: exit after SIGTERM" 0 "$rc"
  expect_contains "$1: says it stops" "$WORK/$1.err" "^dsocr serve: SIGTERM: no new connections; finishing the requests in flight$"
}

# ---- what dsocr ocr answers for the page: the server must answer the same
"$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --mode tiny --prompt '<image>\nFree OCR.' --max-new-tokens 8 \
  --format json --quiet "$IMG" >"$WORK/expect.json" 2>"$WORK/expect.err"
expect_rc "dsocr ocr, the expected answer" 0 $?

# ---- the openai client, refusals, and SIGTERM with requests in flight
if start_server main --api-key sekrit --max-body-mb 1 --max-image-pixels 1500000; then
  expect_contains "main: decodes requests together" "$WORK/main.err" "up to 8 requests at once \(--max-batch 8\)"
  client main main --api-key sekrit --expect "$WORK/expect.json"
  expect_contains "main: one log line per request" "$WORK/main.err" "^\[[0-9]+\] 200 POST /v1/chat/completions \([0-9.]+ s\): 73 image tokens, 8 tokens \(length\)"
  expect_contains "main: refusals logged" "$WORK/main.err" "^\[[0-9]+\] 413 POST /v1/chat/completions .*--max-body-mb"
  client shutdown shutdown --api-key sekrit --pid "$PID"
  stop_server main
fi
# ---- the queue bound and the timeout
if start_server limits --max-queue 1 --timeout-s 2 --max-batch 1; then  # one request at a time
  client limits limits
  stop_server limits
fi
# ---- the port is taken: exit 1
if start_server first; then
  port=${URL##*:}
  timeout 60 "$DSOCR" serve --model "$CKPT" --device "$DEVICE" --port "$port" >"$WORK/taken.out" 2>"$WORK/taken.err"
  expect_rc "a port in use" 1 $?
  expect_contains "a port in use: message" "$WORK/taken.err" "cannot listen on 127.0.0.1:$port"
  kill -INT "$PID"
  wait_exit "$PID" 60
  expect_rc "SIGINT: exit 0" 0 "$rc"
fi
echo "test_serve: $((SECONDS - t_start)) s"
finish

# examples/ray_corpus.py: a local Ray cluster of two dsocr serve workers reads a folder of pages
# (and one file that is not an image): every page answered by one of the workers, both used, each
# answer equal to what dsocr ocr gives for the page, the bad page reported without stopping the
# others, and a second run doing only what is missing. Needs ray and openai in reference/.venv
# (reference/requirements.txt); without them the test is skipped, except under CI=true.
# ctest: once
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CKPT=$SRC/tests/goldens/tiny-ckpt
IMG=$SRC/tests/goldens/images
PY=$SRC/reference/.venv/bin/python
export HF_HOME=$WORK/hf-empty DSOCR_DEMO_MODEL=$WORK/no-demo-model RAY_USAGE_STATS_ENABLED=0
case $DSOCR in /*) ;; *) DSOCR=$PWD/$DSOCR ;; esac
cd "$WORK" || exit 1
if ! "$PY" -c "import ray, openai" 2>/dev/null; then
  if [ "${CI:-}" = true ]; then fail "ray or openai missing from reference/.venv (bash reference/setup.sh installs them)"
  else echo "SKIP: ray or openai not installed in reference/.venv (bash reference/setup.sh)"; fi
  finish
  exit $?
fi
mkdir pages && cp "$IMG"/gradient.png "$IMG"/rgba.png "$IMG"/text_page.png "$IMG"/exif_rot6.jpg pages/
echo "not an image" >pages/zz_broken.png
ray_run() {  # NAME: the example on pages/ into out/
  timeout 600 "$PY" "$SRC/examples/ray_corpus.py" --dsocr "$DSOCR" --model "$CKPT" --device "$DEVICE" --out out \
    --workers 2 --max-tokens 8 --serve-arg=--mode --serve-arg=tiny pages >"$WORK/$1.out" 2>"$WORK/$1.err"
  rc=$?
}
ray_run first
expect_rc "the bad page fails, the others run" 1 "$rc"
expect_contains "summary" "$WORK/first.out" "^4 pages written to out, 1 failed$"
expect_contains "the bad page named" "$WORK/first.out" "zz_broken.png: worker[01]: error: .*(400|image)"
[ "$(ls out | wc -l)" -eq 4 ] && pass "one result file per page" || fail "results: $(ls out)"
"$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --mode tiny --prompt '<image>\nFree OCR.' --max-new-tokens 8 \
  --format json --quiet pages/gradient.png pages/rgba.png pages/text_page.png pages/exif_rot6.jpg >"$WORK/expect.json"
if "$PY" - "$WORK/expect.json" <<'PY'; then pass "each answer is dsocr ocr's text; both workers used"; else fail "answers"; fi
import json, os, sys
want = {j["source"]: j["text"] for j in map(json.loads, open(sys.argv[1]))}
workers = set()
for src, text in want.items():
    key = "".join(c if c.isalnum() or c in "._-" else "%%%02X" % ord(c) for c in src)
    r = json.load(open(os.path.join("out", key + ".json")))
    assert r["text"] == text and r["completion_tokens"] == 8 and r["finish_reason"] == "length", (src, r, text)
    workers.add(r["worker"])
assert workers == {"worker0", "worker1"}, workers
PY
ray_run second
expect_contains "second run: only what is missing" "$WORK/second.out" "^5 pages, 4 already done, 1 to run on 2 workers$"
finish

# dsocr ocr on many pages at once (--max-batch, ocr/page_batch.h) on the tiny random checkpoint: a
# folder of images (one of them not an image at all) and a PDF's three pages of different sizes, run
# one page at a time (--max-batch 1) and several at once (2, 5): the same pages in the same order,
# each with the same generated ids, text and markdown (JSON), the same stdout (markdown and text),
# the same failures, pages' views through the encoder together; the batch size printed; --max-batch checked. The batched decoder's exactness
# on every platform is tests/model/test_batch_generate.cpp's; this is the command's.
# ctest: once
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CKPT=$SRC/tests/goldens/tiny-ckpt
IMG=$SRC/tests/goldens/images
export HF_HOME=$WORK/hf-empty DSOCR_DEMO_MODEL=$WORK/no-demo-model
case $DSOCR in /*) ;; *) DSOCR=$PWD/$DSOCR ;; esac
cd "$WORK" || exit 1
run() {  # NAME ARGS...
  local name=$1
  shift
  "$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --mode tiny --ngram 3 --ngram-window 24 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
}
mkdir -p pages && cp "$IMG"/*.png "$IMG"/*.jpg pages/ && echo "not an image" >pages/broken.png
inputs=(pages)
make_pdf doc.pdf "200 100 1 0 0 rg 20 20 60 40 re f" "100 300 0 0 1 rg 0 0 50 50 re f" "300 200 0 g 10 10 m 90 90 l S"
if "$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --pages 99 doc.pdf 2>&1 | grep -q "without PDF"; then
  echo "SKIP: PDF pages (built without poppler-cpp)"
else
  inputs+=(doc.pdf)  # three pages of different sizes
fi

for b in 1 2 5; do
  run "json$b" --task free --format json --max-new-tokens 40 --max-batch "$b" "${inputs[@]}"
  expect_rc "json, --max-batch $b: one input fails" 1 "$rc"
done
python3 - "$WORK/json1.out" "$WORK/json2.out" "$WORK/json5.out" <<'PY' && pass "json: every page as alone (ids, text, markdown, order, errors)" || fail "json pages differ"
import json, sys
runs = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
base = runs[0]
assert len(base) >= 7, len(base)
assert sum("error" in p for p in base) == 1, [p.get("error") for p in base]
assert len({tuple(p.get("generated_ids", [])) for p in base if "error" not in p}) > 1  # pages differ
for other in runs[1:]:
    assert len(other) == len(base)
    for a, b in zip(base, other):
        for k in ("source", "page", "error", "generated_ids", "text", "markdown", "stop", "tokens", "grid"):
            assert a.get(k) == b.get(k), (a.get("source"), a.get("page"), k)
print("pages:", len(base))
# vision: one page at a time alone; at --max-batch 5 the pages ready together share a pass (the
# first pass, before its memory is measured, takes one page; the reader thread has the next
# pages' views ready long before that page is decoded)
vb = lambda run: [p["timings"]["vision_batch"] for p in run if "error" not in p]
assert set(vb(runs[0])) == {1}, vb(runs[0])
assert max(vb(runs[2])) > 1 and max(vb(runs[2])) <= 5, vb(runs[2])
PY
expect_contains "batch size reported" "$WORK/json5.err" "up to 5 pages at once \(--max-batch 5; KV cache [0-9]+ MiB per page\)"
expect_contains "one page at a time: no batch" "$WORK/json1.err" "loaded in"
grep -q "pages at once" "$WORK/json1.err" && fail "--max-batch 1 batched" || pass "--max-batch 1: page by page"
expect_contains "the broken file fails in its turn" "$WORK/json5.err" "broken.png"
expect_contains "one of the inputs failed" "$WORK/json5.err" "1 of [0-9]+ inputs failed"

# markdown and text on stdout, byte for byte
for fmt in markdown text; do
  for b in 1 3; do run "$fmt$b" --format "$fmt" --max-new-tokens 25 --max-batch "$b" "${inputs[@]}"; done
  if cmp -s "$WORK/${fmt}1.out" "$WORK/${fmt}3.out" && [ -s "$WORK/${fmt}1.out" ]; then pass "$fmt: same stdout at --max-batch 3"
  else fail "$fmt: stdout differs at --max-batch 3"; diff "$WORK/${fmt}1.out" "$WORK/${fmt}3.out" | head -10; fi
  [ "$(grep -c '^<--- Page Split --->$' "$WORK/${fmt}3.out")" -ge 6 ] && pass "$fmt: page splits" || fail "$fmt: page splits"
done

# a single image never batches; --max-batch is checked
run single --max-new-tokens 3 --max-batch 8 "$IMG/gradient.png"
expect_rc "one image" 0 "$rc"
grep -q "pages at once" "$WORK/single.err" && fail "one image batched" || pass "one image: page by page"
for bad in 0 257 x; do
  run "bad$bad" --max-batch "$bad" "$IMG/gradient.png"
  expect_rc "--max-batch $bad refused" 2 "$rc"
  expect_contains "--max-batch $bad: message" "$WORK/bad$bad.err" "max-batch"
done
finish

# dsocr ocr on a corpus (ocr/corpus.h): a manifest (relative paths, comments, a missing file),
# --shard I/N splitting it between runs, --results DIR holding one file per page; the shards
# together give exactly the pages of one whole run, byte for byte; a run started again after a
# kill -9 or with results removed does only the missing pages; the option errors.
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
  "$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --mode tiny --task free --ngram 3 --ngram-window 24 \
    --max-new-tokens 12 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
}
mkdir -p corpus/scans && cp "$IMG"/gradient.png "$IMG"/rgba.png corpus/ && cp "$IMG"/text_page.png "$IMG"/exif_rot6.jpg corpus/scans/
make_pdf corpus/scans/doc.pdf "200 100 1 0 0 rg 20 20 60 40 re f" "100 300 0 0 1 rg 0 0 50 50 re f"
npages=6
if "$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --pages 99 corpus/scans/doc.pdf 2>&1 | grep -q "without PDF"; then
  echo "SKIP: PDF pages (built without poppler-cpp)"
  rm corpus/scans/doc.pdf
  npages=4
fi
{
  echo "# the corpus"
  echo "gradient.png"
  echo
  echo "  rgba.png  "
  echo "scans"
  echo "missing.png"
} >corpus/list.txt

# the whole corpus in one run: one file per page, nothing on stdout, the missing file fails alone
run whole --format markdown --manifest corpus/list.txt --results whole
expect_rc "whole corpus: the missing file fails" 1 "$rc"
[ -s "$WORK/whole.out" ] && fail "whole: output on stdout" || pass "whole: nothing on stdout"
[ "$(ls whole | wc -l)" -eq "$npages" ] && pass "whole: one file per page ($npages)" || fail "whole: $(ls whole)"
expect_contains "whole: summary" "$WORK/whole.err" "results in whole: $npages pages written, 0 already there"
expect_contains "whole: missing named" "$WORK/whole.err" "missing.png does not exist"
expect_contains "whole: file names" <(ls whole) "^corpus%2Fscans%2Ftext_page.png.p0.md$"
[ "$npages" -eq 6 ] && expect_contains "whole: pdf pages" <(ls whole) "^corpus%2Fscans%2Fdoc.pdf.p2.md$"
# the same pages as stdout gives them, page by page
run stdout --format markdown --max-batch 1 --manifest corpus/list.txt
first=$(ls whole/corpus%2Fgradient.png.p0.md)
if head -c "$(wc -c <"$first")" "$WORK/stdout.out" | cmp -s - "$first"; then pass "a page's file holds what stdout shows"
else fail "a page's file differs from stdout"; fi

# three shards: disjoint, and together the whole run, byte for byte
for i in 0 1 2; do
  run "shard$i" --format markdown --manifest corpus/list.txt --shard "$i/3" --results shards
done
if diff -r whole shards >/dev/null; then pass "shards 0/3 1/3 2/3 together = the whole run"; else fail "shards differ"; diff -r whole shards | head; fi
total=0
for i in 0 1 2; do
  n=$(sed -n 's/.*results in shards: \([0-9]*\) pages\? written.*/\1/p' "$WORK/shard$i.err")
  total=$((total + ${n:-100}))
done
[ "$total" -eq "$npages" ] && pass "each page written by one shard only" || fail "shards wrote $total pages"

# resumed: two results removed, the same command again runs those two only
rm shards/corpus%2Frgba.png.p0.md shards/corpus%2Fscans%2Fexif_rot6.jpg.p0.md
run again --format markdown --manifest corpus/list.txt --results shards
expect_contains "resume: only the missing pages" "$WORK/again.err" "results in shards: 2 pages written, $((npages - 2)) already there \(skipped\)"
diff -r whole shards >/dev/null && pass "resume: the whole run again" || fail "resume: results differ"

# killed mid-run (kill -9 once the first page is written): the rerun finishes the rest
"$DSOCR" ocr --model "$CKPT" --device "$DEVICE" --mode tiny --task free --ngram 3 --ngram-window 24 \
  --max-new-tokens 12 --format markdown --max-batch 1 --manifest corpus/list.txt --results crash \
  >"$WORK/crash.out" 2>"$WORK/crash.err" &
pid=$!
for _ in $(seq 2400); do [ -n "$(ls crash/*.md 2>/dev/null)" ] && break; sleep 0.05; done  # up to 2 min (sanitizers)
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
done_before=$(ls crash/*.md 2>/dev/null | wc -l)
[ "$done_before" -ge 1 ] && pass "killed after $done_before page(s)" || fail "no page before the kill"
run resumed --format markdown --manifest corpus/list.txt --results crash
expect_contains "after the kill: the pages done are skipped" "$WORK/resumed.err" \
  "results in crash: $((npages - done_before)) pages? written, $done_before already there"
rm -f crash/*.tmp*  # a page being written when killed: never under its final name
diff -r whole crash >/dev/null && pass "after the kill: the whole run" || fail "after the kill: results differ"

# json results: one line per file
run js --format json --manifest corpus/list.txt --shard 0/2 --results js
for f in js/*.json; do
  python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); assert len(l)==1 and "generated_ids" in json.loads(l[0])' "$f" \
    || fail "json result $f"
done
pass "json results: one object per file"

# a shard with nothing to take; the option errors (exit 2, before any work)
run empty --manifest corpus/list.txt --shard 999/1000 --results none
expect_rc "a shard that takes nothing" 0 "$rc"
expect_contains "a shard that takes nothing: said" "$WORK/empty.err" "shard 999/1000 takes none of the inputs"
for bad in "3/3" "x" "1/0" "-1/2"; do
  run "shard_bad" --manifest corpus/list.txt --shard "$bad"
  expect_rc "--shard $bad" 2 "$rc"
  expect_contains "--shard $bad: message" "$WORK/shard_bad.err" "--shard.*expected I/N"
done
run nomanifest --manifest corpus/none.txt
expect_rc "a manifest that does not exist" 2 "$rc"
expect_contains "a manifest that does not exist: message" "$WORK/nomanifest.err" "--manifest: manifest corpus/none.txt: cannot read it"
printf '# nothing\n\n' >corpus/empty.txt
run emptymanifest --manifest corpus/empty.txt
expect_rc "an empty manifest" 2 "$rc"
expect_contains "an empty manifest: message" "$WORK/emptymanifest.err" "lists no input"
touch notadir
run resultsfile --results notadir "$IMG/gradient.png"
expect_rc "--results on a file" 1 "$rc"
expect_contains "--results on a file: message" "$WORK/resultsfile.err" "results folder notadir: cannot create it"
finish

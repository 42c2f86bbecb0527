# dsocr ocr end to end on the tiny random checkpoints (tests/goldens/tiny-ckpt, and tiny-ckpt-ocr2 of
# DeepSeek-OCR-2): the golden generations through the CLI, streamed output, inputs (folders, stdin,
# PDF pages), options, and every failure with its message, exit status and an empty stdout.
source "$(dirname "$0")/lib.sh" "$@"
SRC=${DSOCR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CKPT=$SRC/tests/goldens/tiny-ckpt
IMG=$SRC/tests/goldens/images
export HF_HOME=$WORK/hf-empty
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE DSOCR_MODEL
export DSOCR_DEMO_MODEL=$WORK/no-demo-model  # no demo model unless a test names one
case $DSOCR in /*) ;; *) DSOCR=$PWD/$DSOCR ;; esac
cd "$WORK" || exit 1  # the default --out-dir ./dsocr-out lands here
FAST=(--model "$CKPT" --device "$DEVICE" --mode tiny --max-new-tokens 6 --ngram 3 --ngram-window 24)

# ocr_run NAME ARGS...: runs dsocr ocr with stdout in $WORK/NAME.out, stderr in $WORK/NAME.err; sets rc
ocr_run() {
  local name=$1
  shift
  "$DSOCR" ocr "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
}
# expect_failure NAME RC PATTERN ARGS...: exit status RC, PATTERN on stderr, nothing on stdout
expect_failure() {
  local name=$1 want=$2 pat=$3
  shift 3
  ocr_run "$name" "$@"
  expect_rc "$name" "$want" "$rc"
  expect_contains "$name: message" "$WORK/$name.err" "$pat"
  if [ -s "$WORK/$name.out" ]; then fail "$name: output on stdout"; sed 's/^/    | /' "$WORK/$name.out" | head -5
  else pass "$name: nothing on stdout"; fi
}
ids_of() { grep -o '"generated_ids":\[[0-9,]*\]' "$1" | sed 's/.*\[//; s/\]//'; }

# ---- the golden generation through the CLI: model_generate_image_tiny_ngram3.h5 (prompt
# "<image>\nFree OCR.", tiny, 80 new tokens, n-gram 3 / window 24). These are its /outputs/tokens;
# tests/model/test_ocr.cpp (page_matches_golden_generation) reads them from the file itself, and
# test_parity_goldens.sh checks the file against the model. --kv f32: the reference's arithmetic,
# as the golden was made (the default f16 cache is compared with it below).
GOLDEN_IDS="1052,746,979,460,443,301,968,917,165,968,917,630,603,917,630,1264,159,1037,458,424,721,746,520,478,917,630,214,730,66,45,375,130,589,1013,85,726,650,458,424,776,968,917,630,1264,159,1037,458,424,721,746,979,460,443,301,968,917,165,968,347,968,347,895,1130,568,114,1194,227,176,1037,458,1115,654,774,1282,1052,828,1019,987,288,996"
ocr_run golden --model "$CKPT" --device "$DEVICE" "$IMG/text_page.png" --mode tiny --task free \
  --max-new-tokens 80 --ngram 3 --ngram-window 24 --format json --kv f32
expect_rc "golden run" 0 "$rc"
if [ "$(ids_of "$WORK/golden.out")" = "$GOLDEN_IDS" ]; then pass "generated ids equal the golden's"
else fail "generated ids differ from the golden:"; echo "    got  $(ids_of "$WORK/golden.out")"; echo "    want $GOLDEN_IDS"; fi
# the default f16 and the bf16 KV cache: on this page (no near-ties among the logits) the same ids
for kv in f16 bf16; do
  ocr_run "kv_$kv" --model "$CKPT" --device "$DEVICE" "$IMG/text_page.png" --mode tiny --task free \
    --max-new-tokens 80 --ngram 3 --ngram-window 24 --format json --kv $kv
  [ "$(ids_of "$WORK/kv_$kv.out")" = "$GOLDEN_IDS" ] && pass "--kv $kv: the golden's ids" || fail "--kv $kv: ids differ"
done
# the golden page decoded in a batch beside three other pages (--max-batch 4, the default path
# for several pages): the same ids, whatever runs beside it
ocr_run golden_batch --model "$CKPT" --device "$DEVICE" "$IMG/gradient.png" "$IMG/text_page.png" "$IMG/rgba.png" \
  "$IMG/exif_rot6.jpg" --mode tiny --task free --max-new-tokens 80 --ngram 3 --ngram-window 24 --format json \
  --kv f32 --max-batch 4
expect_contains "batched: four at once" "$WORK/golden_batch.err" "up to 4 pages at once"
[ "$(grep text_page "$WORK/golden_batch.out" | grep -o '"generated_ids":\[[0-9,]*\]' | sed 's/.*\[//; s/\]//')" = "$GOLDEN_IDS" ] \
  && pass "batched: the golden's ids" || fail "batched: ids differ from the golden"
expect_contains "json: token counts" "$WORK/golden.out" '"tokens":\{"prompt":81,"image":73,"generated":80\}'
expect_contains "json: size, mode, prompt" "$WORK/golden.out" '"width":900,"height":1200,"mode":"tiny".*"prompt":"<image>\\nFree OCR\."'
expect_contains "json: timings" "$WORK/golden.out" '"timings":\{"load_s":[0-9.e-]+,"preprocess_s":.*"decode_tok_s":[0-9.e-]+,"compile_s":[0-9.e-]+\}'
expect_contains "json: stop reason" "$WORK/golden.out" '"stop":"max_new_tokens"'
[ "$(wc -l <"$WORK/golden.out")" -eq 1 ] && pass "json: one line per page" || fail "json: not one line"
expect_contains "progress on stderr" "$WORK/golden.err" "loading .*tiny-ckpt"
expect_contains "per-page progress" "$WORK/golden.err" "^\[1\] .*text_page.png: 900x1200$"
expect_contains "per-page summary" "$WORK/golden.err" "^\[1\] done: tiny, 73 image tokens; vision .* 80 tokens at [0-9.]+ tok/s"
# the limit the user set is information, not a warning (the tiny checkpoint never emits EOS)
expect_contains "stopped at the limit asked for" "$WORK/golden.err" "^\[1\] stopped at --max-new-tokens 80, as asked"
grep -q "warning" "$WORK/golden.err" && fail "a warning for the limit asked for" || pass "no warning for the limit asked for"

# the same page from stdin through --prompt ("\n" = newline): the golden's first ids
"$DSOCR" ocr "${FAST[@]}" --prompt '<image>\nFree OCR.' --format json --quiet - <"$IMG/text_page.png" \
  >"$WORK/stdin.out" 2>"$WORK/stdin.err"
expect_rc "stdin, --prompt" 0 $?
[ "$(ids_of "$WORK/stdin.out")" = "$(echo "$GOLDEN_IDS" | cut -d, -f1-6)" ] && pass "stdin + --prompt = file + --task free" \
  || fail "stdin + --prompt ids $(ids_of "$WORK/stdin.out")"
expect_contains "stdin named" "$WORK/stdin.out" '"source":"<stdin>"'

# ---- several inputs, text streamed: a folder (sorted, other files ignored), pages split
mkdir -p "$WORK/dir"
cp "$IMG/gradient.png" "$WORK/dir/b.png"
cp "$IMG/exif_rot6.jpg" "$WORK/dir/a.JPG"
echo "not an image" >"$WORK/dir/notes.txt"
ocr_run dir "${FAST[@]}" --task free "$WORK/dir"
expect_rc "folder" 0 "$rc"
expect_contains "folder: first a.JPG, EXIF rotation applied" "$WORK/dir.err" "^\[1\] .*/a.JPG: 400x1000"
expect_contains "folder: then b.png" "$WORK/dir.err" "^\[2\] .*/b.png: 333x517"
grep -q "notes.txt" "$WORK/dir.err" && fail "folder: notes.txt read" || pass "folder: other files ignored"
[ "$(grep -c '^<--- Page Split --->$' "$WORK/dir.out")" -eq 1 ] && pass "one page split between two pages" \
  || fail "page splits: $(grep -c 'Page Split' "$WORK/dir.out")"
[ "$(tail -c1 "$WORK/dir.out" | od -An -c | tr -d ' ')" = '\n' ] && pass "text ends with a newline" || fail "no final newline"

# ---- PDF pages
make_pdf "$WORK/doc.pdf" "200 100 1 0 0 rg 20 20 60 40 re f" "100 300 0 0 1 rg 0 0 50 50 re f"
ocr_run pdfprobe --model "$CKPT" --device "$DEVICE" --quiet "$WORK/doc.pdf" --pages 99
if grep -q "without PDF support" "$WORK/pdfprobe.err"; then
  echo "SKIP: PDF tests (built without poppler-cpp)"
else
  ocr_run pdf "${FAST[@]}" --task free --format json --quiet --dpi 72 "$WORK/doc.pdf" --boxes "$WORK/boxes.png"
  expect_rc "pdf, all pages" 0 "$rc"
  [ "$(wc -l <"$WORK/pdf.out")" -eq 2 ] && pass "pdf: two pages" || fail "pdf: $(wc -l <"$WORK/pdf.out") lines"
  expect_contains "pdf page 1 at 72 dpi" "$WORK/pdf.out" '"page":1,"width":200,"height":100'
  expect_contains "pdf page 2 at 72 dpi" "$WORK/pdf.out" '"page":2,"width":100,"height":300'
  grep -q "loading" "$WORK/pdf.err" && fail "--quiet still shows progress" || pass "--quiet silences progress"
  for k in 1 2; do
    if [ "$(head -c 4 "$WORK/boxes-$k.png" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG' ]; then pass "--boxes page $k: PNG written"
    else fail "--boxes page $k: no PNG at $WORK/boxes-$k.png"; fi
  done
  "$DSOCR" ocr "${FAST[@]}" --task free --format json --quiet --pages 2 - <"$WORK/doc.pdf" >"$WORK/pdfin.out" 2>"$WORK/pdfin.err"
  expect_rc "pdf from stdin, --pages 2" 0 $?
  [ "$(wc -l <"$WORK/pdfin.out")" -eq 1 ] && pass "--pages 2: one page" || fail "--pages 2: $(wc -l <"$WORK/pdfin.out") lines"
  expect_contains "--pages 2 at the default 144 dpi" "$WORK/pdfin.out" '"source":"<stdin>","page":2,"width":200,"height":600'
  expect_failure "pdf --pages past the end" 1 "selects none of its 2 pages" "${FAST[@]}" "$WORK/doc.pdf" --pages 5-9
  printf '%%PDF-1.4\nthis is not a PDF body\n' >"$WORK/bad.pdf"
  expect_failure "corrupt pdf" 1 "bad.pdf: corrupt or unreadable PDF" "${FAST[@]}" "$WORK/bad.pdf"
fi

# ---- a working model from the Hugging Face cache layout (refs/main -> snapshot)
mkdir -p "$WORK/hf/hub/models--test--tiny/snapshots/r1" "$WORK/hf/hub/models--test--tiny/refs"
cp "$CKPT"/* "$WORK/hf/hub/models--test--tiny/snapshots/r1/"
echo r1 >"$WORK/hf/hub/models--test--tiny/refs/main"
HF_HOME=$WORK/hf "$DSOCR" ocr --model test/tiny --device "$DEVICE" --mode tiny --max-new-tokens 2 "$IMG/gradient.png" \
  >"$WORK/hf.out" 2>"$WORK/hf.err"
expect_rc "model from the HF cache" 0 $?
expect_contains "HF cache snapshot named" "$WORK/hf.err" "test/tiny \(Hugging Face cache, snapshot r1\)"

# ---- kernels: "compiling kernels (first run only)" with progress on a cold program cache, kept
# out of the stage times (timings.compile_s); nothing compiled on the next run
DSOCR_CACHE_DIR=$WORK/cold-cache ocr_run cold "${FAST[@]}" --task free --format json "$IMG/gradient.png"
expect_rc "cold cache" 0 "$rc"
expect_contains "cold: compiling announced" "$WORK/cold.err" "^dsocr: compiling kernels \(first run only; cached in .*cold-cache\)$"
expect_contains "cold: compile summary" "$WORK/cold.err" "^dsocr: compiled [0-9]+ kernel programs in [0-9.]+ s \(first use; not counted in the times below\)$"
if python3 - "$WORK/cold.out" <<'PY'; then pass "cold: compile_s reported apart"; else fail "cold: compile_s"; fi
import json, sys
t = json.loads(open(sys.argv[1]).readline())["timings"]
assert t["compile_s"] > 0, t
PY
DSOCR_CACHE_DIR=$WORK/cold-cache ocr_run warm "${FAST[@]}" --task free --format json "$IMG/gradient.png"
expect_rc "warm cache" 0 "$rc"
grep -q "compil" "$WORK/warm.err" && fail "warm: compiled again" || pass "warm: nothing compiled"

# ---- generation progress on stderr (a terminal, through script(1)) while stdout is a file;
# --quiet silences it
if command -v script >/dev/null 2>&1; then
  script -qfec "\"$DSOCR\" ocr ${FAST[*]} --max-new-tokens 40 --task free --format json \"$IMG/gradient.png\" >\"$WORK/tty.out\"" \
    "$WORK/tty.log" >/dev/null 2>&1
  tr '\r' '\n' <"$WORK/tty.log" >"$WORK/tty.err"
  expect_contains "progress: tokens, tok/s, elapsed" "$WORK/tty.err" "^\[1\] [0-9]+ tokens, [0-9.]+ tok/s, [0-9.]+ s"
  [ "$(wc -l <"$WORK/tty.out")" -eq 1 ] && pass "progress: stdout holds the JSON alone" || fail "progress: stdout"
  script -qfec "\"$DSOCR\" ocr ${FAST[*]} --max-new-tokens 40 --task free --quiet --format json \"$IMG/gradient.png\" >/dev/null" \
    "$WORK/ttyq.log" >/dev/null 2>&1
  grep -q "tok/s" "$WORK/ttyq.log" && fail "--quiet: progress shown" || pass "--quiet: no progress"
else
  echo "SKIP: generation progress (no script(1))"
fi

# ---- usage errors (exit 2)
expect_failure "no input" 2 "no input" --model "$CKPT"
expect_failure "unknown option" 2 "unknown option --frobnicate" --frobnicate "$IMG/gradient.png"
expect_failure "bad mode" 2 "unknown mode 'huge'" --mode huge "$IMG/gradient.png"
expect_failure "bad format" 2 "--format yaml" --format yaml "$IMG/gradient.png"
expect_failure "locate without --ref" 2 "needs --ref" --task locate "$IMG/gradient.png"
expect_failure "unknown task" 2 "unknown task 'poem'" --task poem "$IMG/gradient.png"
expect_failure "prompt without <image>" 2 "must hold <image> exactly once" --prompt "Free OCR." "$IMG/gradient.png"
expect_failure "bad --pages" 2 "--pages '3-1'" --pages 3-1 "$IMG/gradient.png"
expect_failure "bad --max-tiles" 2 "--max-tiles 12: must be in 2..9" --max-tiles 12 "$IMG/gradient.png"
expect_failure "bad --max-new-tokens" 2 "not an integer" --max-new-tokens lots "$IMG/gradient.png"
expect_failure "bad --dpi" 2 "--dpi 0" --dpi 0 "$IMG/gradient.png"
expect_failure "bad --kv" 2 "--kv: unknown KV cache storage 'f8': use f16, bf16 or f32" --kv f8 "$IMG/gradient.png"
expect_failure "bad --weights" 2 "--weights: unknown weight storage 'int3'" --weights int3 "$IMG/gradient.png"
expect_failure "--pages 0" 2 "--pages '0': there is no page 0" --pages 0 "$IMG/gradient.png"
[ "$(grep -o "count from 1" "$WORK/--pages 0.err" | wc -l)" -eq 1 ] && pass "--pages 0: said once" || fail "--pages 0: repeated"

# ---- output paths: checked before any work (no model loaded), the format the extension names
expect_failure "--boxes in a missing folder" 2 "--boxes .*/no/such/b.png: no folder" "${FAST[@]}" --boxes "$WORK/no/such/b.png" "$IMG/gradient.png"
grep -q "loading" "$WORK/--boxes in a missing folder.err" && fail "--boxes: model loaded first" || pass "--boxes: checked before the model loads"
expect_failure "--boxes .gif" 2 "--boxes .*b.gif: name a PNG \(.png\) or JPEG" "${FAST[@]}" --boxes "$WORK/b.gif" "$IMG/gradient.png"
mkdir -p "$WORK/adir.png"
expect_failure "--boxes a folder" 2 "--boxes .*adir.png: a folder, not a file" "${FAST[@]}" --boxes "$WORK/adir.png" "$IMG/gradient.png"
: >"$WORK/a-file"
expect_failure "--out-dir a file" 2 "--out-dir .*a-file: not a folder" "${FAST[@]}" --format json --out-dir "$WORK/a-file" "$IMG/gradient.png"
expect_failure "--out-dir below a file" 2 "--out-dir .*a-file/sub: .*a-file is not a folder" "${FAST[@]}" --out-dir "$WORK/a-file/sub" "$IMG/gradient.png"
ocr_run boxes_jpg "${FAST[@]}" --task free --quiet --boxes "$WORK/boxes.jpg" "$IMG/gradient.png"
expect_rc "--boxes .jpg" 0 "$rc"
[ "$(head -c 3 "$WORK/boxes.jpg" 2>/dev/null | od -An -tx1 | tr -d ' ')" = "ffd8ff" ] && pass "--boxes .jpg: JPEG written" \
  || fail "--boxes .jpg: not a JPEG"
"$DSOCR" ocr --help >"$WORK/help" 2>&1
expect_rc "ocr --help" 0 $?
expect_contains "help lists the options" "$WORK/help" "--max-tiles N"

# ---- input errors (exit 1, before the model loads)
head -c 3000 "$IMG/text_page.png" >"$WORK/truncated.png"
expect_failure "truncated png" 1 "truncated.png: corrupt PNG" "${FAST[@]}" "$WORK/truncated.png"
printf '\x89PNG\r\n\x1a\ngarbage garbage garbage garbage' >"$WORK/garbage.png"
expect_failure "corrupt png" 1 "garbage.png: corrupt PNG" "${FAST[@]}" "$WORK/garbage.png"
printf '\xff\xd8\xff\xe0 not really a jpeg' >"$WORK/bad.jpg"
expect_failure "corrupt jpeg" 1 "bad.jpg: (corrupt|truncated) JPEG" "${FAST[@]}" "$WORK/bad.jpg"
printf 'GIF89a\x01\x00\x01\x00' >"$WORK/pic.gif"
expect_failure "unsupported format" 1 "pic.gif: unsupported input \(GIF\)" "${FAST[@]}" "$WORK/pic.gif"
echo "hello" >"$WORK/notes.png"
expect_failure "text file named .png" 1 "notes.png: unsupported input" "${FAST[@]}" "$WORK/notes.png"
: >"$WORK/empty.png"
expect_failure "empty file" 1 "empty.png: unsupported input \(an empty file\)" "${FAST[@]}" "$WORK/empty.png"
expect_failure "missing input" 1 "input .*missing.png does not exist" "${FAST[@]}" "$WORK/missing.png"
mkdir -p "$WORK/nothing"
expect_failure "empty folder" 1 "holds no PNG, JPEG or PDF file" "${FAST[@]}" "$WORK/nothing"

# bad inputs among good ones: every input gets its result or its error (in JSON an error object
# in its place), the good ones are processed, exit 1
ocr_run mixed "${FAST[@]}" --task free --format json --quiet "$IMG/gradient.png" "$WORK/truncated.png"
expect_rc "good + corrupt" 1 "$rc"
[ "$(grep -c '"text":' "$WORK/mixed.out")" -eq 1 ] && pass "good + corrupt: the good page is out" || fail "good + corrupt: pages"
expect_contains "good + corrupt: error named" "$WORK/mixed.err" "truncated.png: corrupt PNG"
expect_contains "good + corrupt: error object" "$WORK/mixed.out" '^\{"source":".*truncated.png","page":null,"error":".*corrupt PNG'
expect_contains "good + corrupt: summary" "$WORK/mixed.err" "1 of 2 inputs failed"
mkdir -p "$WORK/mix"
cp "$IMG/gradient.png" "$WORK/mix/a.png"
echo hi >"$WORK/mix/bad.png"
cp "$IMG/gradient.png" "$WORK/mix/c.png"
ocr_run mixdir "${FAST[@]}" --task free --format json --quiet "$WORK/mix" "$WORK/missing.png" "$IMG/gradient.png"
expect_rc "folder with a bad file + a missing path" 1 "$rc"
if python3 - "$WORK/mixdir.out" "$WORK" <<'PY'; then pass "one line per input, in order"; else fail "one line per input"; fi
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
got = [(r["source"].replace(sys.argv[2], "W"), "error" in r) for r in rows]
want = [("W/mix/a.png", False), ("W/mix/bad.png", True), ("W/mix/c.png", False), ("W/missing.png", True)]
assert got[:4] == want and len(got) == 5 and not got[4][1], got
assert "unsupported input" in rows[1]["error"] and "does not exist" in rows[3]["error"], rows
PY
expect_contains "folder + missing: summary" "$WORK/mixdir.err" "2 of 5 inputs failed"
ocr_run mixtext "${FAST[@]}" --task free --quiet "$WORK/missing.png" "$WORK/mix/a.png"
expect_rc "missing first, text output" 1 "$rc"
[ -s "$WORK/mixtext.out" ] && pass "missing first: the other page is out" || fail "missing first: no output"

# ---- model errors (exit 1)
expect_failure "missing model dir" 1 "model directory .*no-such-ckpt does not exist" \
  --model "$WORK/no-such-ckpt" --device "$DEVICE" "$IMG/gradient.png"
expect_failure "default model not downloaded" 1 "huggingface-cli download deepseek-ai/DeepSeek-OCR" \
  --device "$DEVICE" "$IMG/gradient.png"
expect_contains "download hint: hf download" "$WORK/default model not downloaded.err" "hf download deepseek-ai/DeepSeek-OCR"
# no --model, the released model not downloaded, a demo model present: that one, said why on stderr
DSOCR_DEMO_MODEL=$CKPT ocr_run demo_default --device "$DEVICE" --mode tiny --max-new-tokens 2 --ngram 0 --format json \
  "$IMG/gradient.png"
expect_rc "demo model as the default" 0 "$rc"
expect_contains "demo default: why, on stderr" "$WORK/demo_default.err" \
  "deepseek-ai/DeepSeek-OCR is not downloaded .*using dsocr's demo model .*tiny-ckpt"
expect_contains "demo default: read with it" "$WORK/demo_default.out" '"generated_ids"'
expect_failure "repo id not cached" 1 "model org/none is not in the Hugging Face cache" --model org/none "$IMG/gradient.png"
mkdir -p "$WORK/notok"
cp "$CKPT"/* "$WORK/notok/"
rm "$WORK/notok/tokenizer.json"
expect_failure "missing tokenizer.json" 1 "has no tokenizer.json" --model "$WORK/notok" --device "$DEVICE" "$IMG/gradient.png"
mkdir -p "$WORK/mismatch"
cp "$CKPT"/* "$WORK/mismatch/"
sed -i 's/"hidden_size": 128/"hidden_size": 96/' "$WORK/mismatch/config.json"
expect_failure "config-weights mismatch" 1 "hidden_size 96|shape .*config" --model "$WORK/mismatch" --device "$DEVICE" "$IMG/gradient.png"
mkdir -p "$WORK/hostile"
cp "$CKPT"/* "$WORK/hostile/"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$WORK/hostile/model-00001-of-000001.safetensors" bs=1 seek=0 count=8 conv=notrunc 2>/dev/null
expect_failure "hostile safetensors header" 1 "safetensors header length" --model "$WORK/hostile" --device "$DEVICE" "$IMG/gradient.png"
# ---- a checkpoint that names its mode and prompt (config.json "dsocr_demo", as the demo model's):
# used when the command line names none, said on stderr; --mode / --task override.
cp -r "$CKPT" "$WORK/demo-ckpt"
sed -i 's/^{/{\n  "dsocr_demo": {"mode": "tiny", "prompt": "<image>\\nFree OCR."},/' "$WORK/demo-ckpt/config.json"
ocr_run demo_defaults --model "$WORK/demo-ckpt" --device "$DEVICE" --max-new-tokens 2 --format json "$IMG/gradient.png"
expect_rc "checkpoint defaults" 0 "$rc"
expect_contains "checkpoint defaults: said on stderr" "$WORK/demo_defaults.err" \
  'mode tiny, prompt "<image>\\nFree OCR." \(the checkpoint'"'"'s config.json'
expect_contains "checkpoint defaults: tiny mode used" "$WORK/demo_defaults.out" '"mode":"tiny"'
expect_contains "checkpoint defaults: its prompt used" "$WORK/demo_defaults.out" '"prompt":"<image>\\nFree OCR."'
ocr_run demo_override --model "$WORK/demo-ckpt" --device "$DEVICE" --max-new-tokens 2 --format json --mode base \
  --task ocr "$IMG/gradient.png"
expect_contains "checkpoint defaults: --mode overrides" "$WORK/demo_override.out" '"mode":"base"'
expect_contains "checkpoint defaults: --task overrides" "$WORK/demo_override.out" 'OCR this image'
expect_absent "checkpoint defaults: nothing said when overridden" "$WORK/demo_override.err" "the checkpoint's config.json"

# ---- DeepSeek-OCR-2: the tiny v2 checkpoint (tests/goldens/tiny-ckpt-ocr2) gets its one mode, ocr2,
# from its config.json. The golden generation model_generate_ocr2_image_tiles.h5 through the CLI
# (text_page.png: 2x3 tiles of 768 + the 1024 global view, 6*144 + 256 + 1 image tokens; "Free
# OCR.", 48 new tokens, n-gram 20 / window 90; --kv f32 as the golden was made): its /outputs/tokens.
CKPT2=$SRC/tests/goldens/tiny-ckpt-ocr2
GOLDEN2_IDS="802,272,1237,15,257,1046,245,750,15,257,1046,245,750,15,257,1046,245,750,15,257,1046,245,750,15,257,1046,245,393,561,920,913,503,556,843,573,873,1132,1040,214,951,1276,355,170,303,814,631,585,268"
ocr_run v2_golden --model "$CKPT2" --device "$DEVICE" "$IMG/text_page.png" --task free --max-new-tokens 48 \
  --ngram 20 --ngram-window 90 --format json --kv f32
expect_rc "v2 golden run" 0 "$rc"
if [ "$(ids_of "$WORK/v2_golden.out")" = "$GOLDEN2_IDS" ]; then pass "v2: generated ids equal the golden's"
else fail "v2: generated ids differ from the golden:"; echo "    got  $(ids_of "$WORK/v2_golden.out")"; echo "    want $GOLDEN2_IDS"; fi
expect_contains "v2: mode from the checkpoint" "$WORK/v2_golden.err" "mode ocr2 \(the checkpoint's config.json"
expect_contains "v2: mode, grid" "$WORK/v2_golden.out" '"mode":"ocr2","grid":\[2,3\],"tiles":6'
expect_contains "v2: token counts" "$WORK/v2_golden.out" '"tokens":\{"prompt":1129,"image":1121,"generated":48\}'
ocr_run v2_small --model "$CKPT2" --device "$DEVICE" --mode ocr2 --max-new-tokens 3 --format json "$IMG/rgba.png"
expect_rc "v2: --mode ocr2, no tiles" 0 "$rc"
expect_contains "v2: global view only" "$WORK/v2_small.out" '"tiles":0.*"image":257,'
expect_failure "v1 mode on v2" 2 "--mode gundam is a DeepSeek-OCR mode, but .*tiny-ckpt-ocr2 is a DeepSeek-OCR-2 checkpoint: use --mode ocr2" \
  --model "$CKPT2" --device "$DEVICE" --mode gundam "$IMG/gradient.png"
expect_failure "v2 mode on v1" 2 "--mode ocr2 is a DeepSeek-OCR-2 mode, but .*tiny-ckpt is a DeepSeek-OCR checkpoint" \
  --model "$CKPT" --device "$DEVICE" --mode ocr2 "$IMG/gradient.png"
expect_failure "v2 --max-tiles 9" 2 "--max-tiles 9: ocr2 uses at most 6 tiles" --model "$CKPT2" --max-tiles 9 "$IMG/gradient.png"
expect_failure "v2 --no-crop" 2 "--no-crop applies to gundam" --model "$CKPT2" --no-crop "$IMG/gradient.png"

# the HF cache name of the released v2 model resolves like any repo id (a cache holding the tiny v2)
H2=$WORK/hf2/hub/models--deepseek-ai--DeepSeek-OCR-2
mkdir -p "$H2/snapshots/r2" "$H2/refs" && cp "$CKPT2"/* "$H2/snapshots/r2/" && echo r2 >"$H2/refs/main"
HF_HOME=$WORK/hf2 "$DSOCR" ocr --model deepseek-ai/DeepSeek-OCR-2 --device "$DEVICE" --max-new-tokens 2 \
  "$IMG/gradient.png" >"$WORK/v2_hf.out" 2>"$WORK/v2_hf.err"
expect_rc "v2 from the HF cache name" 0 $?
expect_contains "v2 from the HF cache: its mode" "$WORK/v2_hf.err" "mode ocr2"

expect_failure "missing device" 1 "no OpenCL device matches 'no-such-device-xyz'" \
  --model "$CKPT" --device no-such-device-xyz "$IMG/gradient.png"
finish

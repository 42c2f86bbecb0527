# dsocr bench: runs on the device under test and writes the table, JSON and CSV with every field
# (times are not checked: unit tests never time anything). Reduced shapes and two cheap kernels.
source "$(dirname "$0")/lib.sh" "$@"

"$DSOCR" bench kernels --small --runs 1 --only norm --device "$DEVICE" --json "$WORK/b.json" --csv "$WORK/b.csv" \
  >"$WORK/out" 2>&1
expect_rc "bench kernels" 0 $?
expect_contains "peak line" "$WORK/out" "^peak: copy [0-9.]+ GB/s .* SGEMM [0-9.]+ GFLOP/s"
# the names state the shapes run: --small's layer norm is 1024 rows, not the real 4096
expect_contains "layer_norm row" "$WORK/out" "^layer_norm_sam_1024x768 +[0-9.]+ "
expect_contains "rms_norm row" "$WORK/out" "^rms_norm_lm_1024x1280 +[0-9.]+ "
expect_contains "what % peak means" "$WORK/out" "^% peak: of the measured CLBlast SGEMM rate"
expect_contains "SGEMM best of several sizes" "$WORK/out" "SGEMM [0-9.]+ GFLOP/s \([0-9]+\^3; best of 256\^3 [0-9]+, 512\^3 [0-9]+, 1024\^3 [0-9]+\)"
if python3 - "$WORK/b.json" <<'PY'; then pass "JSON fields"; else fail "JSON fields"; fi
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("device", "platform", "driver", "date", "git_sha", "runs", "shapes", "peak", "kernels"):
    assert k in j, k
assert j["peak"]["copy_gbs"] > 0 and j["peak"]["sgemm_gflops"] > 0, j["peak"]
by_n = j["peak"]["sgemm_gflops_by_n"]
assert sorted(by_n) == ["1024", "256", "512"] and max(by_n.values()) == j["peak"]["sgemm_gflops"], by_n
names = [k["name"] for k in j["kernels"]]
assert names == ["layer_norm_sam_1024x768", "rms_norm_lm_1024x1280"], names
for k in j["kernels"]:
    assert k["ms"] > 0 and k["gbytes"] > 0 and k["bound"] == "memory", k
    assert k["above_peak"] == (k["pct_peak"] > 100), k
PY
expect_contains "CSV header" "$WORK/b.csv" "^kernel,ms,gflop,gbytes,gflops,gbs,pct_peak,bound$"
[ "$(wc -l <"$WORK/b.csv")" -eq 3 ] && pass "CSV rows" || fail "CSV rows: $(wc -l <"$WORK/b.csv") lines"

# quality: each weight storage against f32 on the tiny checkpoint; errors ordered as the
# storages' precision (bf16 is the checkpoint's own dtype: no error at all)
SRC_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
"$DSOCR" bench quality --model "$SRC_DIR/tests/goldens/tiny-ckpt" --image "$SRC_DIR/tests/goldens/images/exif_rot6.jpg" \
  --tokens 48 --device "$DEVICE" --json "$WORK/q.json" >"$WORK/q" 2>&1
expect_rc "bench quality" 0 $?
expect_contains "quality table" "$WORK/q" "^int4 +f32 +[0-9.]+ +[0-9.e+-]+ +[0-9.e+-]+ +[0-9.]+%$"
if python3 - "$WORK/q.json" <<'PY'; then pass "quality JSON"; else fail "quality JSON"; fi
import json, sys
all_rows = json.load(open(sys.argv[1]))["quality"]["rows"]
rows = {r["weights"]: r for r in all_rows if r["kv"] == "f32"}
assert list(rows) == ["f32", "bf16", "fp16", "int8", "int4"], list(rows)
kv = {r["kv"]: r for r in all_rows if r["weights"] == "bf16" and r["kv"] != "f32"}
assert list(kv) == ["f16", "bf16"], all_rows
assert 0 < kv["f16"]["max_rel"] < kv["bf16"]["max_rel"] < 1e-1, kv
assert all(r["positions"] == 48 for r in rows.values()), rows
assert rows["bf16"]["max_rel"] == 0 and rows["bf16"]["agree"] == 1, rows["bf16"]
assert 0 < rows["fp16"]["max_rel"] < 1e-3, rows["fp16"]
assert rows["fp16"]["max_rel"] < rows["int8"]["max_rel"] < rows["int4"]["max_rel"], rows
assert rows["int8"]["agree"] >= 0.9, rows["int8"]
assert rows["int4"]["model_mib"] < rows["int8"]["model_mib"] < rows["bf16"]["model_mib"] < rows["f32"]["model_mib"], rows
PY
"$DSOCR" bench quality --device "$DEVICE" >"$WORK/qu" 2>&1
expect_rc "bench quality without a model" 2 $?
expect_contains "quality usage" "$WORK/qu" "needs --model DIR or --random \(one of them\) and --image FILE"
# --random --small: the reduced random-weight model (its linears are wide enough to quantise)
"$DSOCR" bench quality --random --small --image "$SRC_DIR/tests/goldens/images/text_page.png" --tokens 8 \
  --device "$DEVICE" >"$WORK/qr" 2>&1
expect_rc "bench quality --random --small" 0 $?
expect_contains "random quality: int8 row" "$WORK/qr" "^int8 +f32 +[0-9.]+ +[0-9.e+-]+ +[0-9.e+-]+ +[0-9.]+%$"
expect_contains "random quality: names the model" "$WORK/qr" "on the reduced random-weight model"

"$DSOCR" bench frobnicate >"$WORK/usage" 2>&1
expect_rc "unknown bench" 2 $?
expect_contains "usage" "$WORK/usage" "usage: dsocr bench"
"$DSOCR" bench model --weights fp8 --device "$DEVICE" >"$WORK/weights" 2>&1
expect_rc "unknown weight storage" 2 $?
expect_contains "weight storage message" "$WORK/weights" "unknown weight storage 'fp8'"

# model --arch ocr2: DeepSeek-OCR-2 at reduced shapes (the Qwen2 encoder, a page of 6 tiles of 768).
# On PoCL only: the full-size views take about 10 minutes on Mesa 22's llvmpipe (rusticl), 1 on PoCL;
# the v2 kernels themselves run on rusticl in the model_v2 test and the v2 goldens.
if [ "$DEVICE" = pocl ]; then
# (with --checkpoint: start-up through two child processes of `dsocr ocr` on the tiny checkpoint,
# warm program cache only: a cold run recompiles every kernel, minutes on a CPU)
"$DSOCR" bench model --small --runs 1 --arch ocr2 --batch 1,3 --checkpoint "$SRC_DIR/tests/goldens/tiny-ckpt" \
  --mode tiny --warm-only --device "$DEVICE" --json "$WORK/m2.json" >"$WORK/m2" 2>&1
expect_rc "bench model --arch ocr2" 0 $?
expect_contains "ocr2: page row" "$WORK/m2" "vision, ocr2 page \(1024 \+ 6x768\): +[0-9.]+ ms"
expect_contains "ocr2: views in one pass" "$WORK/m2" "vision, 4 views in one pass: +[0-9.]+ ms per view"
if python3 - "$WORK/m2.json" <<'PY'; then pass "ocr2 model JSON"; else fail "ocr2 model JSON"; fi
import json, sys
m = json.load(open(sys.argv[1]))["model"]
assert m["arch"] == "ocr2" and m["tile_side"] == 768, m
assert m["vision_base_ms"] > 0 and m["vision_gundam_ms"] > m["vision_base_ms"], m
assert m["vision_base_batch_ms"] > 0 and m["vision_batch"] == 4, m  # per view of four in one pass
assert m["vision_gundam_tflop"] > 6 * m["vision_base_tflop"] * (768 / 1024) ** 2, m
assert m["decode_tokens"] > 0 and m["decode_tok_s"] > 0 and m["kv"] == "f16" and m["context"] > 0, m
b = m["batch"]  # --batch 1,3: the decode of 1 and of 3 sequences together
assert [p["batch"] for p in b] == [1, 3], b
for p in b:
    assert p["steps"] == m["decode_tokens"] + 1 and p["step_ms"] > 0 and p["pages_per_min_est"] > 0, p
    assert abs(p["tok_s"] - p["batch"] * 1000 / p["step_ms"]) < 1e-6 * p["tok_s"], p
assert abs(b[1]["kv_mib"] - 3 * b[0]["kv_mib"]) < 1e-9 and b[1]["held_mib"] >= b[1]["kv_mib"], b
PY
expect_contains "batched decode rows" "$WORK/m2" "^    batch +3: +[0-9.]+ tok/s aggregate +[0-9.]+ ms/step"
expect_contains "start-up rows" "$WORK/m2" "^    warm program cache: +[0-9.]+ s wall, first token at +[0-9.]+ s \(load"
if python3 - "$WORK/m2.json" <<'PY'; then pass "start-up JSON"; else fail "start-up JSON"; fi
import json, sys
runs = json.load(open(sys.argv[1]))["model"]["startup"]
assert [r["cache"] for r in runs] == ["warm", "warm"], runs
for r in runs:
    assert r["tokens"] == 32 and 0 < r["first_token_s"] < r["wall_s"] and r["load_s"] > 0 and r["decode_tok_s"] > 0, r
PY
fi
"$DSOCR" bench model --small --checkpoint "$WORK/nowhere" --device "$DEVICE" >"$WORK/stbad" 2>&1
expect_rc "bench model --checkpoint that is not a folder" 2 $?
expect_contains "--checkpoint message" "$WORK/stbad" "--checkpoint .*nowhere is not a folder"
"$DSOCR" bench model --batch 1,0 --device "$DEVICE" >"$WORK/batch0" 2>&1
expect_rc "--batch 1,0" 2 $?
expect_contains "--batch message" "$WORK/batch0" "--batch 1,0: expected batch sizes 1..1024 separated by commas"
"$DSOCR" bench model --arch ocr3 --device "$DEVICE" >"$WORK/arch" 2>&1
expect_rc "unknown --arch" 2 $?
expect_contains "--arch message" "$WORK/arch" "--arch ocr3: expected ocr \(DeepSeek-OCR\) or ocr2"

# --only that matches no case: an error listing the cases (at the shapes --small runs), before
# the device is opened (no peak line)
"$DSOCR" bench kernels --small --only nosuch --device "$DEVICE" >"$WORK/only" 2>&1
expect_rc "--only nosuch" 2 $?
expect_contains "--only nosuch: named" "$WORK/only" "--only nosuch: no kernel case contains it"
expect_contains "--only nosuch: small names listed" "$WORK/only" "^  gemm_sam_qkv_1024x768x2304$"
grep -q "^peak:" "$WORK/only" && fail "--only nosuch: measured before failing" || pass "--only nosuch: nothing measured"
"$DSOCR" bench kernels --only nosuch --device "$DEVICE" >"$WORK/only" 2>&1
expect_contains "--only nosuch: real names listed" "$WORK/only" "^  gemm_sam_qkv_4096x768x2304$"

# output paths are checked before any work
"$DSOCR" bench peak --small --json "$WORK/no/such/dir/b.json" --device "$DEVICE" >"$WORK/json" 2>&1
expect_rc "--json in a missing folder" 2 $?
expect_contains "--json message" "$WORK/json" "--json .*b.json: no folder"
grep -q "^peak:" "$WORK/json" && fail "--json: measured before failing" || pass "--json: nothing measured"
"$DSOCR" bench peak --small --csv "$WORK" --device "$DEVICE" >"$WORK/csv" 2>&1
expect_rc "--csv naming a folder" 2 $?
expect_contains "--csv message" "$WORK/csv" "--csv .*: a folder, not a file"

# dsocr tune: bad sizes are usage errors (the tuner itself takes minutes on a GPU: not run here).
"$DSOCR" tune --size 100 --device "$DEVICE" >"$WORK/tune" 2>&1
expect_rc "tune --size 100" 2 $?
expect_contains "tune --size message" "$WORK/tune" "--size 100: must be in 256..8192"
"$DSOCR" tune --fraction 0 --device "$DEVICE" >"$WORK/tune" 2>&1
expect_rc "tune --fraction 0" 2 $?
finish

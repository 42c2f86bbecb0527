# dsocr bench: runs on the device under test and writes the table, JSON and CSV with every field
# (times are not checked: unit tests never time anything). Reduced shapes and two cheap kernels.
source "$(dirname "$0")/lib.sh" "$@"

"$DSOCR" bench kernels --small --runs 1 --only norm --device "$DEVICE" --json "$WORK/b.json" --csv "$WORK/b.csv" \
  >"$WORK/out" 2>&1
expect_rc "bench kernels" 0 $?
expect_contains "peak line" "$WORK/out" "^peak: copy [0-9.]+ GB/s .* SGEMM [0-9.]+ GFLOP/s"
expect_contains "layer_norm row" "$WORK/out" "^layer_norm_sam_4096x768 +[0-9.]+ "
expect_contains "rms_norm row" "$WORK/out" "^rms_norm_lm_1024x1280 +[0-9.]+ "
if python3 - "$WORK/b.json" <<'PY'; then pass "JSON fields"; else fail "JSON fields"; fi
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("device", "platform", "driver", "date", "git_sha", "runs", "shapes", "peak", "kernels"):
    assert k in j, k
assert j["peak"]["copy_gbs"] > 0 and j["peak"]["sgemm_gflops"] > 0, j["peak"]
names = [k["name"] for k in j["kernels"]]
assert names == ["layer_norm_sam_4096x768", "rms_norm_lm_1024x1280"], names
for k in j["kernels"]:
    assert k["ms"] > 0 and k["gbytes"] > 0 and k["bound"] == "memory", k
PY
expect_contains "CSV header" "$WORK/b.csv" "^kernel,ms,gflop,gbytes,gflops,gbs,pct_peak,bound$"
[ "$(wc -l <"$WORK/b.csv")" -eq 3 ] && pass "CSV rows" || fail "CSV rows: $(wc -l <"$WORK/b.csv") lines"

"$DSOCR" bench frobnicate >"$WORK/usage" 2>&1
expect_rc "unknown bench" 2 $?
expect_contains "usage" "$WORK/usage" "usage: dsocr bench"
"$DSOCR" bench model --weights fp8 --device "$DEVICE" >"$WORK/weights" 2>&1
expect_rc "unknown weight storage" 1 $?
expect_contains "weight storage message" "$WORK/weights" "unknown weight storage 'fp8'"

# dsocr tune: bad sizes are usage errors (the tuner itself takes minutes on a GPU: not run here).
"$DSOCR" tune --size 100 --device "$DEVICE" >"$WORK/tune" 2>&1
expect_rc "tune --size 100" 2 $?
expect_contains "tune usage" "$WORK/tune" "usage: dsocr tune"
"$DSOCR" tune --fraction 0 --device "$DEVICE" >"$WORK/tune" 2>&1
expect_rc "tune --fraction 0" 2 $?
finish

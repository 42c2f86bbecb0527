# The on-disk program cache: a first run compiles (misses), a second process loads every program
# from the cache (hits only); an unusable cache folder is bypassed silently; DSOCR_CACHE=0 is off.
source "$(dirname "$0")/lib.sh" "$@"

DSOCR_CACHE_DIR=$WORK/cache "$DSOCR" warmup --device "$DEVICE" >"$WORK/first" 2>&1
expect_rc "first warmup" 0 $?
expect_contains "first run compiles" "$WORK/first" "program cache: 0 hits, [1-9][0-9]* misses, [1-9][0-9]* stored"
n=$(sed -nE 's/.*0 hits, ([0-9]+) misses.*/\1/p' "$WORK/first")

DSOCR_CACHE_DIR=$WORK/cache "$DSOCR" warmup --device "$DEVICE" >"$WORK/second" 2>&1
expect_rc "second warmup" 0 $?
expect_contains "second process: only cache hits" "$WORK/second" "program cache: ${n:-X} hits, 0 misses, 0 stored"

ls "$WORK/cache"/*.tmp.* >/dev/null 2>&1 && fail "temporary files left in the cache" || pass "no temporary files left"

touch "$WORK/not-a-dir"
DSOCR_CACHE_DIR=$WORK/not-a-dir/sub "$DSOCR" warmup --device "$DEVICE" >"$WORK/bad" 2>&1
expect_rc "unusable cache folder is bypassed" 0 $?
expect_contains "bypassed cache reports off" "$WORK/bad" "program cache: 0 hits, [1-9][0-9]* misses, 0 stored \(off\)"

DSOCR_CACHE=0 DSOCR_CACHE_DIR=$WORK/cache "$DSOCR" warmup --device "$DEVICE" >"$WORK/off" 2>&1
expect_contains "DSOCR_CACHE=0 turns the cache off" "$WORK/off" "0 hits, [1-9][0-9]* misses, 0 stored \(off\)"
finish

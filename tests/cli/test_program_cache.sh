# The on-disk program cache: a first run compiles (misses), a second process loads every program
# from the cache (hits only); an unusable cache folder is bypassed silently; DSOCR_CACHE=0 is off;
# truncated or altered cache files are rebuilt, never handed to the driver; a full or read-only
# cache folder (tmpfs mounts in a private mount namespace) never fails a run.
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

# Damaged files: every binary cut short or overwritten; the run rebuilds and replaces them.
cp -r "$WORK/cache" "$WORK/damaged"
k=0
for f in "$WORK/damaged"/*.bin; do
  if [ $((k % 2)) -eq 0 ]; then head -c 100 "$f" >"$f.x"; else head -c "$(stat -c %s "$f")" /dev/urandom >"$f.x"; fi
  mv "$f.x" "$f"
  k=$((k + 1))
done
DSOCR_CACHE_DIR=$WORK/damaged "$DSOCR" warmup --device "$DEVICE" >"$WORK/dmg" 2>&1
expect_rc "damaged cache files" 0 $?
expect_contains "damaged files are rebuilt and stored" "$WORK/dmg" "0 hits, ${n:-X} misses, ${n:-X} stored, ${n:-X} damaged files rebuilt"
DSOCR_CACHE_DIR=$WORK/damaged "$DSOCR" warmup --device "$DEVICE" >"$WORK/dmg2" 2>&1
expect_contains "the rebuilt files load" "$WORK/dmg2" "program cache: ${n:-X} hits, 0 misses"

# A full cache folder (a 64 KiB tmpfs) and a read-only one, each mounted in a private mount
# namespace. Needs root or user namespaces: both are available where CI runs (as root).
if unshare -m true 2>/dev/null; then
  mkdir -p "$WORK/full" "$WORK/ro"
  unshare -m sh -c "mount -t tmpfs -o size=64k tmpfs '$WORK/full' && DSOCR_CACHE_DIR='$WORK/full' exec '$DSOCR' warmup --device '$DEVICE'" >"$WORK/fullout" 2>&1
  expect_rc "full cache folder" 0 $?
  expect_contains "a full folder stores what fits and reports the rest" "$WORK/fullout" "[1-9][0-9]* not stored \(folder full or not writable\)"
  unshare -m sh -c "mount --bind '$WORK/cache' '$WORK/ro' && mount -o remount,bind,ro '$WORK/ro' && DSOCR_CACHE_DIR='$WORK/ro' exec '$DSOCR' warmup --device '$DEVICE'" >"$WORK/roout" 2>&1
  expect_rc "read-only cache folder" 0 $?
  expect_contains "a read-only folder is bypassed" "$WORK/roout" "program cache: 0 hits, [1-9][0-9]* misses, 0 stored \(off\)"
else
  echo "SKIP: full and read-only cache folders (no mount namespaces here: needs root or user namespaces)"
fi
finish

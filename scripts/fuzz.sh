#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_<stem>.cpp) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in build-fuzz (-DDSOCR_FUZZ=ON), runs each for a bounded time, one
# after the other, and prints per target: executions, coverage (libFuzzer's cov: edges and ft:
# features at the end), corpus size, and crashes (inputs that crashed, leaked, hung past -timeout or
# went over -rss_limit_mb; kept under build-fuzz/fuzz-artifacts/<stem>/).
#
# Each run starts from the committed seeds (fuzz/corpus/<stem>/) plus what earlier runs found
# (build-fuzz/fuzz-corpus/<stem>/, not committed). A finding, once fixed, goes into
# fuzz/regressions/<stem>/ so that ctest's fuzz_replay/<stem> keeps it fixed.
#
# usage: scripts/fuzz.sh [-t SECONDS] [--keep-going] [--no-build] [TARGET...]
#   -t SECONDS     time per target (default 60)
#   --keep-going   fork mode: go on after a crash (-fork=1 -ignore_crashes=1 ...), to collect several
#   --no-build     use the binaries already in build-fuzz
#   TARGET         stems to run (default: every fuzz/fuzz_*.cpp): safetensors config image ...
# Environment: BUILD_DIR (default build-fuzz), CXX (default clang++), FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
secs=60
keep_going=0
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) secs="$2"; shift 2 ;;
    --keep-going) keep_going=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do t="$(basename "$f" .cpp)"; targets+=("${t#fuzz_}"); done
fi
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_$t.cpp" ] || { echo "fuzz.sh: no target $t (fuzz/fuzz_$t.cpp)" >&2; exit 2; }
done
bash scripts/setup.sh
# libFuzzer comes with clang's runtime (Debian 12: clang 14 and libclang-rt-14-dev).
if [ "$build" = 1 ] && command -v apt-get >/dev/null && ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev
fi
bdir="${BUILD_DIR:-build-fuzz}"

if [ $build -eq 1 ]; then
  cxx="${CXX:-clang++}"
  command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" -DDSOCR_FUZZ=ON \
    "${launcher[@]}" >/dev/null
  cmake --build "$bdir" -j"${JOBS:-2}" --target "${targets[@]/#/fuzz_}"
fi

# Sanitizer settings: abort on the first report so that libFuzzer records the input.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

summary=()
for t in "${targets[@]}"; do
  work="$bdir/fuzz-corpus/$t"
  art="$bdir/fuzz-artifacts/$t"
  log="$bdir/fuzz-logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  before=$(find "$art" -type f | wc -l)
  flags=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1
         -artifact_prefix="$art/")
  [ $keep_going -eq 1 ] && flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  echo "== fuzz $t: ${secs} s (log $log)"
  set +e
  # shellcheck disable=SC2086
  "$bdir/fuzz/fuzz_$t" "${flags[@]}" ${FUZZ_ARGS:-} "$work" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  [ -z "$execs" ] && execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(find "$work" -type f | wc -l)
  crashes=$(( $(find "$art" -type f | wc -l) - before ))
  line=$(printf '%-18s %10s execs  cov %5s  ft %6s  corpus %5s  new findings %2s  rc %s' \
    "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes" "$rc")
  echo "$line"
  if [ "$crashes" -gt 0 ] || [ $rc -ne 0 ]; then
    grep -m3 -E 'ERROR: |runtime error|SUMMARY|deadly signal|Test unit written' "$log" | sed 's/^/    /' || true
  fi
  summary+=("$line")
done
echo
echo "== summary (${secs} s per target; findings under $bdir/fuzz-artifacts/<target>/)"
printf '%s\n' "${summary[@]}"

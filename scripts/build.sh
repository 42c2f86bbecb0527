#!/usr/bin/env bash
# Configures and builds dsocr into ${BUILD_DIR:-build} (Release).
#   bash scripts/build.sh [--target NAME]... [CMAKE_ARG...]
# --target builds only that target (e.g. dsocr; repeatable); without it, everything (the dsocr
# command and the test suite). Other arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
targets=()
cmake_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || { echo "build.sh: --target needs a name" >&2; exit 2; }
      targets+=(--target "$2"); shift 2 ;;
    --target=*) targets+=(--target "${1#--target=}"); shift ;;
    *) cmake_args+=("$1"); shift ;;
  esac
done
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}"
cmake --build "$build" -j"$(nproc)" "${targets[@]}"

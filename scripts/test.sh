#!/usr/bin/env bash
# The test command: sets up a fresh machine, builds, and runs every test on every OpenCL platform
# present (PoCL, and rusticl on llvmpipe; NVIDIA etc. where installed). ctest names read
# "<platform>/<test>".  DSOCR_TEST_DEVICES=pocl,rusticl restricts the platforms.
# The layout rules (tests/structure/check_structure.py) are checked first.
# Then the PoCL tests again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (scripts/test_sanitize.sh, in build-asan). Then the PyTorch reference suite
# (scripts/test_reference.sh), which also checks that regenerating the goldens reproduces
# tests/goldens.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
bash scripts/setup.sh
# The reference's venv before ctest: tests/cli/test_serve.sh's OpenAI client lives in it.
bash reference/setup.sh
echo "== structure: library layers, file and function sizes (docs/architecture.md)"
python3 tests/structure/check_structure.py --self-test
python3 tests/structure/check_structure.py
bash scripts/build.sh
export RUSTICL_ENABLE=${RUSTICL_ENABLE:-llvmpipe}
build=${BUILD_DIR:-build}
echo "== OpenCL devices"
"$build/dsocr" devices
cd "$build"
ctest --output-on-failure --timeout 1500 -j1
cd "$root"
if [ "${DSOCR_TEST_SANITIZE:-1}" != 0 ]; then  # DSOCR_TEST_SANITIZE=0 skips it
  echo "== sanitizers: the PoCL tests under ASan + UBSan + LSan (build-asan)"
  bash scripts/test_sanitize.sh
fi
echo "== reference (PyTorch) suite"
bash scripts/test_reference.sh

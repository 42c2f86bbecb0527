# dsocr devices and device selection errors.
source "$(dirname "$0")/lib.sh" "$@"

"$DSOCR" devices >"$WORK/list" 2>&1
expect_rc "devices" 0 $?
for field in "vendor" "driver" "OpenCL C" "compute units" "global memory" "local memory" "max work-group" \
             "cl_khr_fp16" "subgroups" "images"; do
  expect_contains "devices shows $field" "$WORK/list" "$field"
done
expect_contains "devices lists the device under test" "$WORK/list" "\] ${DEVICE%%:*}:"

"$DSOCR" warmup --device no-such-device-xyz >"$WORK/bad" 2>&1
expect_rc "unknown device" 1 $?
expect_contains "unknown device lists the devices" "$WORK/bad" "no OpenCL device matches 'no-such-device-xyz'.*"
expect_contains "listing follows" "$WORK/bad" "\[0\]"

"$DSOCR" warmup --device "${DEVICE%%:*}:99" >"$WORK/idx" 2>&1
expect_rc "index out of range" 1 $?

"$DSOCR" frobnicate >"$WORK/usage" 2>&1
expect_rc "unknown command" 2 $?
finish

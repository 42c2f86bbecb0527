# A kernel that does not compile: the error names the file and the options and shows the build log.
source "$(dirname "$0")/lib.sh" "$@"

mkdir -p "$WORK/kernels"
cat >"$WORK/kernels/broken.cl" <<'CL'
__kernel void broken_f32(__global float* y) {
  y[get_global_id(0)] = this_is_not_defined_anywhere;
}
CL
DSOCR_CACHE=0 DSOCR_KERNEL_DIR=$WORK/kernels "$DSOCR" warmup --device "$DEVICE" >"$WORK/out" 2>&1
expect_rc "broken kernel fails" 1 $?
expect_contains "names the kernel file" "$WORK/out" "building kernels/broken.cl for"
expect_contains "shows the options" "$WORK/out" "options: -cl-std=CL1.2"
expect_contains "shows the build log" "$WORK/out" "build log:"
expect_contains "log has the compiler's message" "$WORK/out" "this_is_not_defined_anywhere"
finish

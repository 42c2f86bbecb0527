// Work-group reductions shared by several kernels (#include "reduce.cl").
// Requires a 1-D work-group of exactly WG work-items, WG a power of two, and `scratch` of WG floats.
// Every work-item gets the result. Two barriers per level; scratch may be reused after return.

#ifndef REDUCE_CL
#define REDUCE_CL
#ifndef WG
#define WG 256
#endif

inline float wg_reduce_sum(float v, __local float* scratch) {
  int l = get_local_id(0);
  scratch[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (l < s) scratch[l] += scratch[l + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

inline float wg_reduce_max(float v, __local float* scratch) {
  int l = get_local_id(0);
  scratch[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = WG / 2; s > 0; s >>= 1) {
    if (l < s) scratch[l] = fmax(scratch[l], scratch[l + s]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  float r = scratch[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return r;
}

// LANE_TREE(scratch, l, lane): sums each lane group of LANES consecutive work-items (LANES a power
// of two, defined by the includer) in local `scratch` (float, float2, float8...: one element per
// work-item, written before), in place: lane 0 of a group ends with its group's sum. Every
// work-item must reach it (it holds barriers); scratch may be rewritten after one more barrier.
#define LANE_TREE(scratch, l, lane)                     \
  barrier(CLK_LOCAL_MEM_FENCE);                         \
  for (int h_ = LANES / 2; h_ > 0; h_ >>= 1) {          \
    if ((lane) < h_) scratch[(l)] += scratch[(l) + h_]; \
    barrier(CLK_LOCAL_MEM_FENCE);                       \
  }
#endif  // REDUCE_CL

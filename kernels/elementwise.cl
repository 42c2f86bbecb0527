// Elementwise arithmetic, fp32. One work-item per element; global = n rounded up to 256.
//   add_f32:       y[i] = a[i] + b[i]          (y may alias a or b)
//   add_bcast_f32: y[i] = a[i] + b[i % nb]     (b broadcast over leading dims: position embeddings)

__kernel void add_f32(__global const float* a, __global const float* b, __global float* y, int n) {
  int i = get_global_id(0);
  if (i < n) y[i] = a[i] + b[i];
}

__kernel void add_bcast_f32(__global const float* a, __global const float* b, __global float* y, int n, int nb) {
  int i = get_global_id(0);
  if (i < n) y[i] = a[i] + b[i % nb];
}

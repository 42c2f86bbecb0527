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

// copy_rows_f32: y[y_off + r*y_ld + c] = x[x_off + r*x_ld + c] for r < rows, c < cols (a strided
//   block copy: K/V heads out of a fused projection into the KV cache); global (cols↑64, rows).
__kernel void copy_rows_f32(__global const float* x, int x_off, int x_ld, __global float* y, int y_off, int y_ld,
                            int rows, int cols) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  y[(size_t)y_off + (size_t)r * y_ld + c] = x[(size_t)x_off + (size_t)r * x_ld + c];
}

// fill_uniform_f32: y[i] = offset + scale * u(i), u uniform in [-1, 1) from a hash of (i, seed)
//   (random weights for benchmarks; no state, the same values on every device); global (n↑256).
__kernel void fill_uniform_f32(__global float* y, int n, uint seed, float offset, float scale) {
  int i = get_global_id(0);
  if (i >= n) return;
  uint h = (uint)i * 0x9E3779B1u ^ seed;
  h ^= h >> 16;
  h *= 0x7FEB352Du;
  h ^= h >> 15;
  h *= 0x846CA68Bu;
  h ^= h >> 16;
  y[i] = offset + scale * ((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
}

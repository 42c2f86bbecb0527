// Elementwise activations, fp32 arithmetic.
//   gelu:       y = 0.5 x (1 + erf(x / sqrt 2))          (exact GELU, as nn.GELU())
//   quick_gelu: y = x * sigmoid(1.702 x)                 (CLIP)
//   silu:       y = x * sigmoid(x)
//   swiglu:     y[i] = silu(gate[i]) * up[i]             (LLaMA-style MLP product)
// Index mapping: one work-item per element, global = n rounded up to the work-group size.

inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp(-x)); }

__kernel void gelu_f32(__global const float* x, __global float* y, int n) {
  int i = get_global_id(0);
  if (i < n) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
  }
}

__kernel void quick_gelu_f32(__global const float* x, __global float* y, int n) {
  int i = get_global_id(0);
  if (i < n) {
    float v = x[i];
    y[i] = v * sigmoid_f(1.702f * v);
  }
}

__kernel void silu_f32(__global const float* x, __global float* y, int n) {
  int i = get_global_id(0);
  if (i < n) {
    float v = x[i];
    y[i] = v * sigmoid_f(v);
  }
}

// gate and up may be rows of one fused [rows, 2*width] tensor: element (r, c) of gate is
// gate[r*ld + c + gate_off], of up up[r*ld + c + up_off]; y is dense [rows, width].
__kernel void swiglu_f32(__global const float* gate, __global const float* up, __global float* y, int rows,
                         int width, int ld, int gate_off, int up_off) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= width || r >= rows) return;
  float g = gate[(size_t)r * ld + c + gate_off];
  y[(size_t)r * width + c] = g * sigmoid_f(g) * up[(size_t)r * ld + c + up_off];
}

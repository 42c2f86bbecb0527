// Convolution helpers, fp32 (the GEMM itself is CLBlast's).
//
// im2col_f32 (also torch F.unfold): cols[n, (c*kh + ki)*kw + kj, oh*Wo + ow] = x[n, c, oh*s - p + ki, ow*s - p + kj],
//   0 outside the image. x [N,C,H,W], cols [N, C*kh*kw, Ho*Wo].
//   One work-item per output element; global (L↑64, C*kh*kw, N), L = Ho*Wo (reads of neighbouring
//   work-items fall on neighbouring pixels of one row: coalesced for stride 1).
// bias_rows_f32: y[n, o, l] += bias[o], y [N,O,L]; global (L↑64, O, N).

__kernel void im2col_f32(__global const float* x, __global float* cols, int C, int H, int W, int kh, int kw,
                         int stride, int pad, int Ho, int Wo) {
  int l = get_global_id(0), r = get_global_id(1), n = get_global_id(2);
  int L = Ho * Wo;
  if (l >= L) return;
  int c = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
  int ih = (l / Wo) * stride - pad + ki, iw = (l % Wo) * stride - pad + kj;
  float v = 0.0f;
  if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[(((size_t)n * C + c) * H + ih) * W + iw];
  cols[((size_t)n * C * kh * kw + r) * L + l] = v;
}

__kernel void bias_rows_f32(__global float* y, __global const float* bias, int O, int L) {
  int l = get_global_id(0), o = get_global_id(1), n = get_global_id(2);
  if (l >= L) return;
  y[((size_t)n * O + o) * L + l] += bias[o];
}

// Convolution helpers, fp32 (the GEMM itself is CLBlast's).
//
// im2col_f32 (also torch F.unfold): cols[n, (c*kh + ki)*kw + kj, oh*Wo + ow] = x[n, c, oh*s - p + ki, ow*s - p + kj],
//   0 outside the image. x [N,C,H,W], cols [N, C*kh*kw, Ho*Wo].
//   Work-item (ow, oh, nc = n*C + c), global (Wo↑, Ho↑, N*C) with 2-D work-groups of 256 over (ow, oh): it
//   writes its kh*kw outputs (ki, kj), for each (ki, kj) neighbouring work-items write neighbouring
//   elements of a cols row (coalesced) and read one input row at stride s (the other kj re-read the
//   same lines from cache). No integer division.
// im2col_patch_f32: the same for non-overlapping patches (kh = kw = s, p = 0: the projector's 2x2
//   unfold, SAM's 16x16 patch embedding). Work-item (ow, ih, nc), ih < Ho*s, global (Wo↑, (Ho*s)↑, N*C):
//   oh = ih / s, ki = ih % s; it reads the s contiguous inputs x[n, c, ih, ow*s + kj] (neighbouring
//   work-items: contiguous input) and writes each to cols row (c*s + ki)*s + kj at oh*Wo + ow (coalesced).
// bias_rows_f32: y[n, o, l] += bias[o], y [N,O,L]; global (L↑64, O, N).

__kernel void im2col_f32(__global const float* x, __global float* cols, int H, int W, int kh, int kw, int stride,
                         int pad, int Ho, int Wo) {
  int ow = get_global_id(0), oh = get_global_id(1);
  size_t nc = get_global_id(2);
  if (ow >= Wo || oh >= Ho) return;
  size_t L = (size_t)Ho * Wo;
  __global const float* xc = x + nc * H * W;
  __global float* out = cols + nc * kh * kw * L + (size_t)oh * Wo + ow;
  int ih0 = oh * stride - pad, iw0 = ow * stride - pad;
  for (int ki = 0; ki < kh; ++ki) {
    int ih = ih0 + ki;
    bool row_ok = ih >= 0 && ih < H;
    for (int kj = 0; kj < kw; ++kj) {
      int iw = iw0 + kj;
      out[(size_t)(ki * kw + kj) * L] = row_ok && iw >= 0 && iw < W ? xc[(size_t)ih * W + iw] : 0.0f;
    }
  }
}

__kernel void im2col_patch_f32(__global const float* x, __global float* cols, int H, int W, int s, int Ho, int Wo) {
  int ow = get_global_id(0), ih = get_global_id(1);
  size_t nc = get_global_id(2);
  if (ow >= Wo || ih >= Ho * s) return;
  int oh = ih / s, ki = ih - oh * s;
  size_t L = (size_t)Ho * Wo;
  __global const float* src = x + (nc * H + ih) * W + ow * s;
  __global float* out = cols + (nc * s + ki) * s * L + (size_t)oh * Wo + ow;
  for (int kj = 0; kj < s; ++kj) out[(size_t)kj * L] = src[kj];
}

__kernel void bias_rows_f32(__global float* y, __global const float* bias, int O, int L) {
  int l = get_global_id(0), o = get_global_id(1), n = get_global_id(2);
  if (l >= L) return;
  y[((size_t)n * O + o) * L + l] += bias[o];
}

// DeepEncoder glue (model-spec §1.4, §3, §5), fp32.
//
// concat_features_f32: feat[n,p,:] = [ clip[n,1+p,0:Cc] | sam[n,0:Cs,p] ]   (CLS dropped, SAM map
//   flattened row-major and transposed); clip [N,hw+1,Cc], sam [N,Cs,hw], feat [N,hw,Cc+Cs].
//   One work-item per output element; global ((Cc+Cs)↑64, hw, N).
//
// assemble_views_f32: the image-token sequence, in order:
//   tiles mosaic: for r < q*rows, for c < q*cols: tiles[(r/q)*cols + c/q, (r%q)*q + c%q, :],
//                 then image_newline after each mosaic row (only when there are tiles);
//   global view:  for r < g: g tokens of glob[0, r*g + c, :], then image_newline;
//   then view_seperator.
//   out [rows_total, C]; one work-item per output element; global (C↑64, rows_total). The page's
//   tiles start at view tile0 of tiles, its global view is view glob0 of glob (pages encoded
//   together: vision_embeddings_batch).

__kernel void concat_features_f32(__global const float* clip, __global const float* sam, __global float* feat,
                                  int Cc, int Cs, int hw) {
  int c = get_global_id(0), p = get_global_id(1), n = get_global_id(2);
  int C = Cc + Cs;
  if (c >= C || p >= hw) return;
  float v = c < Cc ? clip[((size_t)n * (hw + 1) + 1 + p) * Cc + c] : sam[((size_t)n * Cs + (c - Cc)) * hw + p];
  feat[((size_t)n * hw + p) * C + c] = v;
}

__kernel void assemble_views_f32(__global const float* tiles, __global const float* glob,
                                 __global const float* newline, __global const float* separator,
                                 __global float* out, int C, int q, int cols, int rows, int g, int tile0,
                                 int glob0) {
  int c = get_global_id(0), t = get_global_id(1);
  if (c >= C) return;
  int tile_rows = (cols * rows > 0) ? q * rows : 0;
  int tile_row_len = q * cols + 1;
  int n_tile_tokens = tile_rows * tile_row_len;
  int n_glob_tokens = g * (g + 1);
  float v;
  if (t < n_tile_tokens) {
    int r = t / tile_row_len, k = t % tile_row_len;
    if (k == q * cols) v = newline[c];
    else v = tiles[(((size_t)tile0 + (r / q) * cols + k / q) * q * q + (r % q) * q + k % q) * C + c];
  } else if (t < n_tile_tokens + n_glob_tokens) {
    int u = t - n_tile_tokens, r = u / (g + 1), k = u % (g + 1);
    v = k == g ? newline[c] : glob[(((size_t)glob0 * g + r) * g + k) * C + c];
  } else if (t == n_tile_tokens + n_glob_tokens) {
    v = separator[c];
  } else {
    return;
  }
  out[(size_t)t * C + c] = v;
}

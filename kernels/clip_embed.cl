// CLIP embeddings fed by SAM features (model-spec §1.2):
//   x[b,0,c]   = cls[c] + pos[0,c]
//   x[b,1+p,c] = sam[b,c,p] + pos[1+p,c]      p < hw (SAM map flattened row-major)
// sam [B,C,hw], pos [hw+1,C] (already resized to the grid), x [B,hw+1,C].
// Index mapping: one work-item per output element; global (C↑64, hw+1, B).

__kernel void clip_embed_f32(__global const float* sam, __global const float* cls, __global const float* pos,
                             __global float* x, int C, int hw) {
  int c = get_global_id(0), t = get_global_id(1), b = get_global_id(2);
  if (c >= C || t > hw) return;
  float v = t == 0 ? cls[c] : sam[((size_t)b * C + c) * hw + (t - 1)];
  x[((size_t)b * (hw + 1) + t) * C + c] = v + pos[(size_t)t * C + c];
}

// The MoE router's selection (included by moe.cl and moe_decode.cl), for one token per work-group
// of WG work-items (reduce.cl), the token's E logits already in local memory p:
//   p = softmax(p) over E;  ids[r] = the expert of rank r in p sorted by descending probability,
//   ties: lower id first (a stable sort), r < k;
//   weights[r] = p[ids[r]] * scale, or p[ids[r]] / (sum_r p + 1e-20) when norm (k > 1).
// Work-item l owns experts l, l+WG, ... and computes each one's rank by counting the experts ahead
// of it (E comparisons per expert), so the ranks are exactly the stable order. sel: local k
// floats; scratch: local WG floats. Every work-item of the group must call it.
#include "reduce.cl"

inline void route_topk(__local float* p, int E, int k, int norm, float scale, __global int* ids,
                       __global float* weights, __local float* sel, __local float* scratch) {
  const int l = get_local_id(0);
  float m = -INFINITY;
  for (int e = l; e < E; e += WG) m = fmax(m, p[e]);
  m = wg_reduce_max(m, scratch);
  float s = 0.0f;
  for (int e = l; e < E; e += WG) {
    float v = exp(p[e] - m);
    p[e] = v;
    s += v;
  }
  s = wg_reduce_sum(s, scratch);  // its barriers also publish p
  for (int e = l; e < E; e += WG) p[e] = p[e] / s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = l; e < E; e += WG) {
    float pe = p[e];
    int rank = 0;
    for (int f = 0; f < E; ++f) {
      float q = p[f];
      rank += (q > pe || (q == pe && f < e)) ? 1 : 0;
    }
    if (rank < k) {
      ids[rank] = e;
      sel[rank] = pe;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l < k) {
    float w = sel[l];
    if (norm) {
      float sum = 0.0f;
      for (int r = 0; r < k; ++r) sum += sel[r];
      w = w / (sum + 1e-20f);
    } else {
      w = w * scale;
    }
    weights[l] = w;
  }
}

// SAM's decomposed relative-position terms (kernels/rel_pos.cl), fp32, built from the UNSCALED q:
//
//   Rh[y,ky] = tab_h[y - ky + kh - 1],  Rw[x,kx] = tab_w[x - kx + kw - 1]
//   rel_h[b,h,(y,x),ky] = <q[b,h,(y,x),:], Rh[y,ky]>,  rel_w[b,h,(y,x),kx] = <q[b,h,(y,x),:], Rw[x,kx]>
//
// The query grid equals the key grid (kh x kw, row-major tokens). Pass the results to sdpa as
// SdpaParams::rel_pos, which adds rel_h[.., j / kw] + rel_w[.., j % kw] to logit (i, j).
// Tables whose length is not 2k-1 must be resized first (linear, align_corners=False).
#pragma once
#include "runtime/ops/sdpa.h"

namespace dsocr::ops {

// q: view [B,H,kh*kw,D] (e.g. AttnView::fused(qkv, 0)); tab_h [2kh-1,D]; tab_w [2kw-1,D];
// rel_h [B,H,kh*kw,kh] and rel_w [B,H,kh*kw,kw] written. Any D.
void rel_pos_terms(Runtime& rt, const AttnView& q, const Tensor& tab_h, const Tensor& tab_w, int kh, int kw,
                   Tensor& rel_h, Tensor& rel_w);

}  // namespace dsocr::ops

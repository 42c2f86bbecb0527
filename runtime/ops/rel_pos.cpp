#include "runtime/ops/rel_pos.h"

#include <fmt/format.h>

#include <algorithm>

namespace dsocr::ops {

namespace {

// rel_pos.cl's tile shape (see its header): work-items along positions (tp) and keys (tk),
// groups per work-group, register tile, D chunk.
struct Tile {
  int tp, tk, gb, tm, tn, dc;
  int nt() const { return gb * tp * tk; }
  int bp() const { return tp * tm; }
  int bk() const { return tk * tn; }
};

// One tile shape for both terms, from the larger grid side s: a tile covers about s positions x
// s keys of each group with 128-256 work-items. Five shapes only (each one is a program to
// compile). Chosen on an H200, where they take (before: one output per work-item; B*H = 12,
// D = 64): 64x64 1668 -> 40 us, 40x40 424 -> 15 us, 32x32 219 -> 15 us, 80x80 3247 -> 77 us,
// 25 windows of 14x14 446 -> 26 us.
Tile pick_tile(int s) {
  if (s <= 16) return {4, 4, 8, 4, 4, 32};    // 14x14 windows: 16 x 16, 8 groups
  if (s <= 40) return {8, 8, 2, 5, 5, 32};    // 40x40 (and 32x32): 40 x 40, 2 groups
  if (s <= 64) return {8, 16, 2, 8, 4, 32};   // 64x64: 64 x 64, 2 groups
  if (s <= 80) return {16, 16, 1, 5, 5, 32};  // 80x80: 80 x 80
  return {16, 16, 1, 8, 8, 16};               // 128 x 128, several tiles past that
}

// rel_pos.cl's local memory: (query rows + table rows) x (the D chunk + 1).
size_t local_bytes(const Tile& t) { return 4 * static_cast<size_t>(t.gb * t.bp() + t.gb + t.bk() - 1) * (t.dc + 1); }

// Work-groups of one term: ceil(G/gb) * ceil(P/bp) * ceil(K/bk) (G groups of P queries, K keys).
size_t tiles(size_t G, size_t P, size_t K, const Tile& t) {
  return ceil_div(G, t.gb) * ceil_div(P, t.bp()) * ceil_div(K, t.bk());
}

}  // namespace

void rel_pos_terms(Runtime& rt, const AttnView& q, const Tensor& tab_h, const Tensor& tab_w, int kh, int kw,
                   Tensor& rel_h, Tensor& rel_w) {
  if (kh < 1 || kw < 1) throw Error(fmt::format("rel_pos_terms: grid {}x{} is empty", kh, kw));
  q.check("rel_pos_terms", "q");
  const int64_t B = q.B, H = q.H, N = q.N, D = q.D;
  if (N != static_cast<int64_t>(kh) * kw)
    throw Error(fmt::format("rel_pos_terms: q {} has {} tokens, expected the grid {}x{} = {}", shape_str(q.shape()), N,
                            kh, kw, static_cast<int64_t>(kh) * kw));
  auto expect = [](const char* name, const Tensor& t, const Shape& want) {
    if (!t.defined() || t.dtype != DType::f32 || t.shape != want)
      throw Error(fmt::format("rel_pos_terms: {} is {} {}, expected f32 {}", name,
                              t.defined() ? dtype_name(t.dtype) : "undefined", t.defined() ? shape_str(t.shape) : "",
                              shape_str(want)));
  };
  expect("tab_h", tab_h, {2 * kh - 1, D});
  expect("tab_w", tab_w, {2 * kw - 1, D});
  expect("rel_h", rel_h, {B, H, N, kh});
  expect("rel_w", rel_w, {B, H, N, kw});
  if (B * H * N * (kh + kw) > INT32_MAX) throw NotImplemented("rel_pos_terms: too many elements for 32-bit indices");

  const Tile t = pick_tile(std::max(kh, kw));
  if (local_bytes(t) > 32768)  // the portable limit (Apple GPUs under Asahi)
    throw Error(fmt::format("rel_pos_terms: internal: tile for a {}x{} grid needs {} bytes of local memory", kh, kw,
                            local_bytes(t)));
  const size_t ntiles = tiles(kh, kw, kh, t) + tiles(kw, kh, kw, t);  // rel_h tiles, then rel_w
  auto& k = rt.kernel("rel_pos.cl", "rel_pos_terms_f32",
                      {{"RP_TP", std::to_string(t.tp)},
                       {"RP_TK", std::to_string(t.tk)},
                       {"RP_GB", std::to_string(t.gb)},
                       {"RP_TM", std::to_string(t.tm)},
                       {"RP_TN", std::to_string(t.tn)},
                       {"RP_DC", std::to_string(t.dc)}});
  rt.launch(k, cl::NDRange(t.nt() * ntiles, B * H), cl::NDRange(t.nt(), 1), q.t, static_cast<int64_t>(q.offset), q.sb,
            q.sh, q.sn, tab_h, tab_w, rel_h, rel_w, static_cast<cl_int>(H), static_cast<cl_int>(kh),
            static_cast<cl_int>(kw), static_cast<cl_int>(D));
}

}  // namespace dsocr::ops

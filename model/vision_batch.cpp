// vision_embeddings_batch (model/deepencoder.h): several pages' views through the encoder in as
// few passes as their sizes allow.
#include <fmt/format.h>

#include <map>

#include "model/deepencoder.h"
#include "model/preprocess.h"

namespace dsocr {
namespace {

// The views of one size from several pages, stacked in page order: page i's first view is
// views first[i] of the encoder's output.
struct Stack {
  std::vector<float> pixels;  // [n, 3, S, S]
  int64_t n = 0;
  std::map<size_t, int64_t> first;  // by page
  Tensor encoded;                   // [n, tokens, n_embed]
};

}  // namespace

std::vector<Tensor> vision_embeddings_batch(Runtime& rt, DeepEncoder& enc, const std::vector<const Views*>& pages) {
  std::map<int, Stack> globals, tiles;  // by view size
  for (size_t i = 0; i < pages.size(); ++i) {
    const Views& v = *pages[i];
    const size_t g_len = size_t{3} * v.global_size * v.global_size, t_len = size_t{3} * v.tile_size * v.tile_size;
    if (v.global_view.size() != g_len || v.tiles.size() != t_len * static_cast<size_t>(v.n_tiles) ||
        (v.n_tiles > 0 && v.n_tiles != v.cols * v.rows))
      throw Error(
          fmt::format("vision batch: page {} has {} global and {} tile values for a {}px view and {} tiles "
                      "of {}px in a {}x{} grid",
                      i, v.global_view.size(), v.tiles.size(), v.global_size, v.n_tiles, v.tile_size, v.cols, v.rows));
    Stack& g = globals[v.global_size];
    g.first[i] = g.n++;
    g.pixels.insert(g.pixels.end(), v.global_view.begin(), v.global_view.end());
    if (v.n_tiles > 0) {
      Stack& t = tiles[v.tile_size];
      t.first[i] = t.n;
      t.n += v.n_tiles;
      t.pixels.insert(t.pixels.end(), v.tiles.begin(), v.tiles.end());
    }
  }
  for (auto* stacks : {&tiles, &globals})
    for (auto& [size, st] : *stacks) {
      Tensor px = rt.upload(st.pixels, {st.n, 3, size, size});
      st.pixels = {};
      st.encoded = encode_views(rt, enc, px);
    }
  std::vector<Tensor> out;
  out.reserve(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    const Views& v = *pages[i];
    const Stack& g = globals.at(v.global_size);
    const Stack* t = v.n_tiles > 0 ? &tiles.at(v.tile_size) : nullptr;
    out.push_back(assemble_views(rt, enc, t ? &t->encoded : nullptr, t ? t->first.at(i) : 0, v.cols, v.rows, g.encoded,
                                 g.first.at(i)));
  }
  return out;
}

}  // namespace dsocr

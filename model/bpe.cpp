// The BPE model of the tokenizer (model/tokenizer_impl.h): merges by rank over one pre-tokenized
// piece, as the `tokenizers` library's BPE model applies them.
#include <functional>
#include <queue>
#include <tuple>

#include "model/tokenizer_impl.h"

namespace dsocr {

using tokenizer_detail::byte_map;
using tokenizer_detail::merge_key;

// Byte-level BPE as tokenizers' BPE model: with ignore_merges a piece that is a vocabulary token is
// that token; otherwise every byte its own symbol, then the pair of lowest merge rank (leftmost
// among equals) merged until no pair has a merge; stale heap entries skipped.
void Tokenizer::Impl::bpe(const std::string& piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    std::string mapped;
    for (unsigned char c : piece) mapped += byte_map().byte_str[c];
    if (auto v = vocab.find(mapped); v != vocab.end()) {
      out.push_back(v->second);
      return;
    }
  }
  // symbols: one per byte (its byte-level character); unknown ones become unk (fused when asked) or are dropped
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  bool last_unk = false;
  for (unsigned char c : piece) {
    int32_t id = byte_id[c];
    if (id >= 0) {
      sym.push_back(id);
      last_unk = false;
    } else if (unk_id >= 0) {
      if (!(last_unk && fuse_unk)) sym.push_back(unk_id);
      last_unk = true;
    }
  }
  int n = static_cast<int>(sym.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  auto lookup = [&](int a) -> const std::pair<int32_t, int32_t>* {
    auto it = merges.find(merge_key(sym[a], sym[next[a]]));
    return it == merges.end() ? nullptr : &it->second;
  };
  using Cand = std::tuple<int32_t, int, int32_t>;  // rank, position, merged id: lowest rank, then leftmost
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int a) {
    if (a < 0 || next[a] < 0) return;
    if (auto* mg = lookup(a)) heap.emplace(mg->first, a, mg->second);
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    auto [rank, a, merged] = heap.top();
    heap.pop();
    if (!alive[a] || next[a] < 0) continue;
    auto* mg = lookup(a);
    if (!mg || mg->second != merged) continue;  // stale: a neighbour changed since
    int b = next[a];
    sym[a] = merged;
    alive[b] = false;
    next[a] = next[b];
    if (next[b] >= 0) prev[next[b]] = a;
    push(prev[a]);
    push(a);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(sym[i]);
}

// The pre-tokenizer's Split regexes one after another over every piece, then BPE per piece.
void Tokenizer::Impl::encode_text(const std::string& text, std::vector<int32_t>& out) const {
  std::vector<std::string> pieces{text}, next_pieces;
  for (auto& re : splits) {
    next_pieces.clear();
    for (auto& p : pieces) re->split(p, next_pieces);
    pieces.swap(next_pieces);
  }
  for (auto& p : pieces) bpe(p, out);
}

}  // namespace dsocr

// The op table of `dsocr parity`: one entry per op of the golden contract's vocabulary.
#include <fmt/format.h>

#include <filesystem>

#include "parity/golden_weights.h"
#include "parity/parity.h"
#include "model/preprocess.h"
#include "model/sam.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/softmax.h"

namespace dsocr {
namespace {

ParityOutputs op_linear(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  const auto& w = c.weight("weight");
  expect_shape(c, "weights/weight", w, {-1, -1});
  if (x.shape.empty() || x.shape.back() != w.shape[1])
    throw GoldenError(
        fmt::format("{}: inputs/x {} must end in in_features {}", c.path, shape_str(x.shape), w.shape[1]));
  Tensor xt = to_device(rt, x, "x"), wt = to_device(rt, w, "weight");
  Tensor bt;
  if (auto* b = c.weight_opt("bias")) {
    expect_shape(c, "weights/bias", *b, {w.shape[0]});
    bt = to_device(rt, *b, "bias");
  }
  Shape ys = x.shape;
  ys.back() = w.shape[0];
  Tensor y = rt.empty(ys);
  linear(rt, xt, wt, bt.defined() ? &bt : nullptr, y);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_norm(Runtime& rt, const GoldenCase& c, int kind) {  // 0 layer_norm, 1 layer_norm_2d, 2 rms_norm
  const auto& x = c.input("x");
  if (x.shape.empty()) throw GoldenError(fmt::format("{}: inputs/x must not be a scalar", c.path));
  int64_t C = kind == 1 ? (x.shape.size() == 4 ? x.shape[1] : -1) : x.shape.back();
  if (kind == 1) expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  const auto& w = c.weight("weight");
  expect_shape(c, "weights/weight", w, {C});
  Tensor xt = to_device(rt, x, "x"), wt = to_device(rt, w, "weight"), y = rt.empty(x.shape);
  double eps = c.attr_float("eps", kind == 0 ? 1e-5 : 1e-6);
  if (kind == 2) {
    ops::rms_norm(rt, xt, wt, y, static_cast<float>(eps));
  } else {
    const auto& b = c.weight("bias");
    expect_shape(c, "weights/bias", b, {C});
    Tensor bt = to_device(rt, b, "bias");
    if (kind == 0)
      ops::layer_norm(rt, xt, wt, bt, y, static_cast<float>(eps));
    else
      ops::layer_norm_2d(rt, xt, wt, bt, y, static_cast<float>(eps));
  }
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_activation(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  std::string kind = c.attr_str("kind", "");
  if (kind.empty()) throw GoldenError(fmt::format("{}: attribute kind (gelu|quick_gelu|silu) is missing", c.path));
  ops::Act act;
  try {
    act = ops::parse_act(kind);
  } catch (const Error& e) {
    throw GoldenError(fmt::format("{}: {}", c.path, e.what()));
  }
  Tensor xt = to_device(rt, x, "x"), y = rt.empty(x.shape);
  ops::activation(rt, act, xt, y);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_softmax(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  if (x.shape.empty()) throw GoldenError(fmt::format("{}: inputs/x must not be a scalar", c.path));
  Tensor xt = to_device(rt, x, "x"), y = rt.empty(x.shape);
  ops::softmax(rt, xt, y);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_sam_block(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  SamConfig cfg;
  cfg.width = x.shape[3];
  cfg.heads = c.attr_int("num_heads", 12);
  cfg.window_size = c.attr_int("window_size", 14);
  bool global = cfg.window_size == 0;
  const auto& lin1 = c.weight("mlp.lin1.weight");
  expect_shape(c, "weights/mlp.lin1.weight", lin1, {-1, cfg.width});
  cfg.mlp_ratio = static_cast<double>(lin1.shape[0]) / static_cast<double>(cfg.width);
  const auto& table = c.weight("attn.rel_pos_h");
  expect_shape(c, "weights/attn.rel_pos_h", table, {-1, cfg.width / std::max<int64_t>(cfg.heads, 1)});
  if (global) cfg.image_size = (table.shape[0] + 1) / 2 * cfg.patch_size;
  cfg.ln_eps = c.attr_float("eps", 1e-6);
  GoldenWeights w(c);
  SamBlock blk = load_sam_block(rt, w, cfg, global);
  Tensor xt = to_device(rt, x, "x");
  sam_block_forward(rt, cfg, blk, xt);
  return {{"y", from_device_f32(rt, xt)}};
}

// Host-side: Pillow-exact views; no device work.
ParityOutputs op_image_preprocess(Runtime&, const GoldenCase& c) {
  const auto& rgb = c.input("rgb");
  expect_shape(c, "inputs/rgb", rgb, {-1, -1, 3});
  if (rgb.kind != HostArray::Kind::i64) throw GoldenError(fmt::format("{}: inputs/rgb must be uint8", c.path));
  RgbImage im;
  im.height = static_cast<int>(rgb.shape[0]);
  im.width = static_cast<int>(rgb.shape[1]);
  im.rgb.resize(rgb.i.size());
  for (size_t k = 0; k < rgb.i.size(); ++k) im.rgb[k] = static_cast<uint8_t>(rgb.i[k]);
  std::string mode = c.attr_str("mode", "");
  Views v;
  try {
    v = make_views(im, mode, static_cast<int>(c.attr_int("max_tiles", 9)));
  } catch (const Error& e) {
    throw GoldenError(fmt::format("{}: {}", c.path, e.what()));
  }
  ParityOutputs out;
  HostArray g;
  g.shape = {1, 3, v.global_size, v.global_size};
  g.f = v.global_view;
  out["global_view"] = g;
  HostArray t;
  t.shape = {v.n_tiles, 3, v.tile_size, v.tile_size};
  t.f = v.tiles;
  out["tiles"] = t;
  HostArray grid;
  grid.kind = HostArray::Kind::i64;
  grid.shape = {2};
  grid.i = {v.cols, v.rows};
  out["grid"] = grid;
  return out;
}

}  // namespace

// The checkpoint directory of a model-level case (root attribute, relative to the file).
std::string case_checkpoint(const GoldenCase& c) {
  std::string rel = c.attr_str("checkpoint", "");
  if (rel.empty()) throw GoldenError(fmt::format("{}: root attribute checkpoint is missing", c.path));
  auto dir = std::filesystem::path(c.path).parent_path() / rel;
  if (!std::filesystem::is_directory(dir))
    throw GoldenError(fmt::format("{}: checkpoint directory {} does not exist", c.path, dir.string()));
  return dir.string();
}

namespace {

ParityOutputs op_tokenize(Runtime&, const GoldenCase& c) {
  const auto& text = c.input("text");
  std::string s;
  for (auto b : text.i) s += static_cast<char>(static_cast<uint8_t>(b));
  Tokenizer tok = Tokenizer::from_file(case_checkpoint(c) + "/tokenizer.json");
  auto ids = tok.encode(s);
  HostArray a;
  a.kind = HostArray::Kind::i64;
  a.shape = {static_cast<int64_t>(ids.size())};
  a.i.assign(ids.begin(), ids.end());
  return {{"ids", a}};
}

}  // namespace

void register_model_parity_ops(std::map<std::string, ParityFn>& table);   // parity_model.cpp
void register_kernel_parity_ops(std::map<std::string, ParityFn>& table);  // parity_kernels.cpp
void register_lm_parity_ops(std::map<std::string, ParityFn>& table);      // parity_lm.cpp
void register_qwen2_parity_ops(std::map<std::string, ParityFn>& table);   // parity_qwen2.cpp

const std::map<std::string, ParityFn>& parity_ops() {
  static const std::map<std::string, ParityFn> table = [] {
    std::map<std::string, ParityFn> t = {
        {"linear", op_linear},
        {"layer_norm", [](Runtime& rt, const GoldenCase& c) { return op_norm(rt, c, 0); }},
        {"layer_norm_2d", [](Runtime& rt, const GoldenCase& c) { return op_norm(rt, c, 1); }},
        {"rms_norm", [](Runtime& rt, const GoldenCase& c) { return op_norm(rt, c, 2); }},
        {"activation", op_activation},
        {"softmax", op_softmax},
        {"sam_block", op_sam_block},
        {"image_preprocess", op_image_preprocess},
        {"tokenize", op_tokenize},
    };
    register_model_parity_ops(t);
    register_kernel_parity_ops(t);
    register_lm_parity_ops(t);
    register_qwen2_parity_ops(t);
    return t;
  }();
  return table;
}

const std::vector<std::string>& parity_ops_pending() {
  static const std::vector<std::string> pending = {};
  return pending;
}

}  // namespace dsocr

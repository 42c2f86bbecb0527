#include "model/convert.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "model/safetensors.h"
#include "runtime/half.h"
#include "runtime/quant.h"

namespace dsocr {
namespace fs = std::filesystem;
namespace {

enum class Action { copy, quantize, half };

struct Planned {
  const TensorView* src = nullptr;
  Action action = Action::copy;
};

struct OutTensor {
  std::string dtype;
  Shape shape;
  uint64_t bytes = 0;
};

// Decides each tensor's fate (scanning the data where the storage needs it) and fills the notes.
std::map<std::string, Planned> plan(const WeightStore& store, WeightStorage storage, ConvertReport& rep) {
  std::map<std::string, Planned> out;
  for (const std::string& name : store.names()) {
    const TensorView& t = store.get(name);
    Planned p{&t, Action::copy};
    const bool matrix = t.shape.size() == 2 && (t.dtype == StDType::bf16 || t.dtype == StDType::f32 ||
                                                t.dtype == StDType::f16);
    if (storage == WeightStorage::fp16 && matrix && t.dtype != StDType::f16) {
      const std::vector<float> f = WeightStore::to_f32(t);
      if (first_beyond_half(f.data(), static_cast<int64_t>(f.size())) < 0)
        p.action = Action::half;
      else
        rep.notes.push_back(fmt::format("{} kept as {}: a value is beyond fp16's range", name, st_dtype_name(t.dtype)));
    } else if (storage != WeightStorage::fp16 && lm_linear_name(name)) {
      std::vector<float> f = matrix ? WeightStore::to_f32(t) : std::vector<float>{};
      if (matrix && t.shape[1] % kQuantGroup == 0 && quantizable(f.data(), static_cast<int64_t>(f.size())))
        p.action = Action::quantize;
      else
        rep.notes.push_back(fmt::format("{} kept as {} {}: not quantisable (2-D floats with an input size that is a "
                                        "multiple of 32, every value within fp16's range)",
                                        name, st_dtype_name(t.dtype), shape_str(t.shape)));
    }
    out[name] = p;
  }
  return out;
}

std::string part_name(const std::string& weight, const char* part) {
  return weight.substr(0, weight.size() - std::string("weight").size()) + part;
}

}  // namespace

bool lm_linear_name(const std::string& name) {
  static const std::regex re(
      R"(model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(shared_experts\.|experts\.\d+\.)?(gate|up|down)_proj)\.weight)");
  return std::regex_match(name, re);
}

ConvertReport convert_checkpoint(const std::string& src, const std::string& dst, WeightStorage storage,
                                 const std::function<void(const std::string&)>& on_tensor) {
  if (storage != WeightStorage::fp16 && storage != WeightStorage::int8 && storage != WeightStorage::int4)
    throw Error(fmt::format("convert: --weights {} is not a conversion; use fp16, int8 or int4",
                            weight_storage_name(storage)));
  const fs::path in(src), out(dst);
  if (!fs::is_regular_file(in / "config.json")) throw Error(fmt::format("convert: {} has no config.json", src));
  if (fs::exists(out / "model.safetensors") || fs::exists(out / "model.safetensors.index.json") ||
      fs::exists(out / "config.json"))
    throw Error(fmt::format("convert: {} already holds a checkpoint; choose an empty or new folder", dst));
  if (fs::exists(out) && fs::equivalent(in, out)) throw Error("convert: the destination is the source folder");
  WeightStore store = WeightStore::open_dir(src);
  ConvertReport rep;
  auto decided = plan(store, storage, rep);
  const DType qt = storage == WeightStorage::int8 ? DType::q8 : DType::q4;
  const int bits = storage == WeightStorage::int8 ? 8 : 4;

  // The header: every output tensor in name order with its byte range.
  std::map<std::string, OutTensor> outs;
  for (auto& [name, p] : decided) {
    const Shape& s = p.src->shape;
    if (p.action == Action::quantize) {
      const int64_t N = s[0], K = s[1], G = K / kQuantGroup;
      outs[name] = {"U32", {N, K * bits / 32}, static_cast<uint64_t>(N * K * bits / 8)};
      outs[part_name(name, "scales")] = {"F16", {N, G}, static_cast<uint64_t>(N * G * 2)};
      outs[part_name(name, "biases")] = {"F16", {N, G}, static_cast<uint64_t>(N * G * 2)};
    } else if (p.action == Action::half) {
      outs[name] = {"F16", s, static_cast<uint64_t>(p.src->numel() * 2)};
    } else {
      outs[name] = {st_dtype_name(p.src->dtype), s, p.src->bytes};
    }
  }
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}, {"dsocr_weights", weight_storage_name(storage)}};
  uint64_t off = 0;
  for (auto& [name, o] : outs) {
    header[name] = {{"dtype", o.dtype}, {"shape", o.shape}, {"data_offsets", {off, off + o.bytes}}};
    off += o.bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');

  fs::create_directories(out);
  const fs::path file = out / "model.safetensors";
  std::ofstream f(file, std::ios::binary);
  uint64_t hl = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(hl >> (8 * i));
  f.write(reinterpret_cast<const char*>(len), 8);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  // The data in the header's order. A quantised matrix's parts (X.biases, X.scales, X.weight sort
  // in that order) are computed together at the first of them and written as their names come.
  std::map<std::string, std::vector<uint8_t>> pending;
  auto bytes_of = [](const void* p, size_t n) {
    std::vector<uint8_t> b(n);
    std::memcpy(b.data(), p, n);
    return b;
  };
  for (auto& [name, o] : outs) {
    if (!pending.count(name)) {
      std::string parent = name;
      for (const char* part : {"scales", "biases"})
        if (!decided.count(name) && name.size() > std::strlen(part) &&
            name.compare(name.size() - std::strlen(part), std::strlen(part), part) == 0)
          parent = name.substr(0, name.size() - std::strlen(part)) + "weight";
      const Planned& p = decided.at(parent);
      if (on_tensor) on_tensor(parent);
      rep.bytes_in += p.src->bytes;
      if (p.action == Action::copy) {
        f.write(reinterpret_cast<const char*>(p.src->data), static_cast<std::streamsize>(p.src->bytes));
        ++rep.copied;
        continue;
      }
      ++rep.converted;
      std::vector<float> w = WeightStore::to_f32(*p.src);
      if (p.action == Action::half) {
        std::vector<uint16_t> hv(w.size());
        for (size_t i = 0; i < w.size(); ++i) hv[i] = f32_to_f16(w[i]);
        f.write(reinterpret_cast<const char*>(hv.data()), static_cast<std::streamsize>(hv.size() * 2));
        continue;
      }
      auto blocks = quantize(qt, w.data(), static_cast<int64_t>(w.size()));
      std::vector<uint8_t> codes;
      std::vector<uint16_t> scales, offsets;
      blocks_to_parts(qt, blocks.data(), static_cast<int64_t>(w.size()), codes, scales, offsets);
      pending[parent] = std::move(codes);
      pending[part_name(parent, "scales")] = bytes_of(scales.data(), scales.size() * 2);
      pending[part_name(parent, "biases")] = bytes_of(offsets.data(), offsets.size() * 2);
    }
    auto it = pending.find(name);
    if (it->second.size() != o.bytes) throw Error(fmt::format("convert: internal error: {} has the wrong size", name));
    f.write(reinterpret_cast<const char*>(it->second.data()), static_cast<std::streamsize>(it->second.size()));
    pending.erase(it);
  }
  if (!pending.empty()) throw Error("convert: internal error: quantised parts out of order");
  f.close();
  if (!f) throw Error(fmt::format("convert: writing {} failed (disk full?)", file.string()));
  rep.bytes_out = off;

  nlohmann::ordered_json cfg;
  {
    std::ifstream c(in / "config.json");
    cfg = nlohmann::ordered_json::parse(c);
  }
  if (storage != WeightStorage::fp16) cfg["quantization"] = {{"group_size", kQuantGroup}, {"bits", bits}, {"mode", "affine"}};
  std::ofstream(out / "config.json") << cfg.dump(2) << "\n";
  for (const auto& e : fs::directory_iterator(in)) {
    const std::string fn = e.path().filename().string();
    if (!e.is_regular_file() || fn == "config.json" || fn == "model.safetensors.index.json" ||
        e.path().extension() == ".safetensors")
      continue;
    fs::copy_file(e.path(), out / fn, fs::copy_options::overwrite_existing);
  }
  return rep;
}

}  // namespace dsocr

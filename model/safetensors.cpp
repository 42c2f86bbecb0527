#include "model/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/half.h"

namespace dsocr {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;

bool parse_dtype(const std::string& s, StDType& out) {
  static const std::map<std::string, StDType> m = {
      {"F32", StDType::f32}, {"F16", StDType::f16},     {"BF16", StDType::bf16}, {"F64", StDType::f64},
      {"I64", StDType::i64}, {"I32", StDType::i32},     {"I16", StDType::i16},   {"I8", StDType::i8},
      {"U8", StDType::u8},   {"U32", StDType::u32},     {"BOOL", StDType::boolean}};
  auto it = m.find(s);
  if (it == m.end()) return false;
  out = it->second;
  return true;
}

}  // namespace

const char* st_dtype_name(StDType t) {
  switch (t) {
    case StDType::f32:
      return "F32";
    case StDType::f16:
      return "F16";
    case StDType::bf16:
      return "BF16";
    case StDType::f64:
      return "F64";
    case StDType::i64:
      return "I64";
    case StDType::i32:
      return "I32";
    case StDType::i16:
      return "I16";
    case StDType::i8:
      return "I8";
    case StDType::u8:
      return "U8";
    case StDType::u32:
      return "U32";
    case StDType::boolean:
      return "BOOL";
  }
  return "?";
}

size_t st_dtype_size(StDType t) {
  switch (t) {
    case StDType::f64:
    case StDType::i64:
      return 8;
    case StDType::f32:
    case StDType::i32:
    case StDType::u32:
      return 4;
    case StDType::f16:
    case StDType::bf16:
    case StDType::i16:
      return 2;
    default:
      return 1;
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(fmt::format("cannot open checkpoint file {}: {}", path, std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(fmt::format("cannot stat {}", path));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw Error(
        fmt::format("{}: not a safetensors file ({} bytes, shorter than the 8-byte header length)", path, size_));
  }
  map_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(fmt::format("cannot memory-map {}", path));
  }
  try {
    const auto* base = static_cast<const uint8_t*>(map_);
    uint64_t hlen = 0;
    std::memcpy(&hlen, base, 8);  // little-endian hosts only (x86-64, arm64)
    if (hlen > kMaxHeader || hlen > size_ - 8)
      throw Error(
          fmt::format("{}: safetensors header length {} exceeds the file ({} bytes) or the 100 MiB limit "
                      "(truncated or not a safetensors file)",
                      path, hlen, size_));
    std::string header(reinterpret_cast<const char*>(base + 8), hlen);
    nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error(fmt::format("{}: safetensors header is not a JSON object", path));
    const uint8_t* data = base + 8 + hlen;
    uint64_t data_size = size_ - 8 - hlen;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    std::vector<std::string> range_names;
    for (auto& [name, v] : j.items()) {
      if (name == "__metadata__") {
        if (v.is_object())
          for (auto& [k, mv] : v.items())
            if (mv.is_string()) metadata_[k] = mv.get<std::string>();
        continue;
      }
      const std::string& tensor = name;  // (clang 14 lambdas cannot capture structured bindings)
      auto bad = [&](const std::string& why) { return Error(fmt::format("{}: tensor {}: {}", path, tensor, why)); };
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw bad("entry must have dtype, shape and data_offsets");
      TensorView t;
      t.name = name;
      t.file = path;
      if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), t.dtype))
        throw bad(fmt::format("unknown dtype {}", v["dtype"].dump()));
      if (!v["shape"].is_array()) throw bad("shape is not an array");
      uint64_t numel = 1;
      for (auto& d : v["shape"]) {
        if (!d.is_number_unsigned())
          throw bad(fmt::format("shape {} has a non-integer or negative entry", v["shape"].dump()));
        uint64_t dv = d.get<uint64_t>();
        if (dv > (1ull << 40) || (dv && numel > (1ull << 62) / dv)) throw bad("shape is absurdly large");
        numel *= dv;
        t.shape.push_back(static_cast<int64_t>(dv));
      }
      auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw bad("data_offsets must be two non-negative integers");
      // numel * dtype size can wrap around 2^64 (shape [2^40, 2^22] of F32): compare by division.
      if (numel > data_size / st_dtype_size(t.dtype))
        throw bad(fmt::format("shape {} of {} needs more bytes than the data region's {}", shape_str(t.shape),
                              st_dtype_name(t.dtype), data_size));
      uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
      if (b > e || e > data_size)
        throw bad(fmt::format("data_offsets [{}, {}] outside the data region of {} bytes", b, e, data_size));
      if (e - b != numel * st_dtype_size(t.dtype))
        throw bad(fmt::format("data_offsets span {} bytes but shape {} of {} needs {}", e - b, shape_str(t.shape),
                              st_dtype_name(t.dtype), numel * st_dtype_size(t.dtype)));
      t.data = data + b;
      t.bytes = e - b;
      ranges.push_back({b, e});
      range_names.push_back(name);
      tensors_.emplace(name, std::move(t));
    }
    std::vector<size_t> order(ranges.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
    uint64_t max_end = 0;
    size_t max_idx = 0;
    for (size_t k : order) {
      auto [b, e] = ranges[k];
      if (b == e) continue;  // empty tensors occupy no bytes
      if (b < max_end)
        throw Error(fmt::format("{}: tensors {} and {} overlap (bytes [{}, {}) and [{}, {}))", path,
                                range_names[max_idx], range_names[k], ranges[max_idx].first, ranges[max_idx].second, b,
                                e));
      max_end = e;
      max_idx = k;
    }
  } catch (...) {
    munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
}

WeightStore WeightStore::open_files(const std::vector<std::string>& files) {
  WeightStore s;
  for (auto& f : files) {
    auto sf = std::make_shared<SafetensorsFile>(f);
    for (auto& [name, t] : sf->tensors()) {
      if (s.index_.count(name))
        throw Error(fmt::format("tensor {} appears in both {} and {}", name, s.index_[name]->file, f));
      s.index_[name] = &t;
    }
    s.files_.push_back(std::move(sf));
  }
  return s;
}

WeightStore WeightStore::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(fmt::format("{}: not a safetensors index (no weight_map object)", index.string()));
    std::vector<std::string> shards;
    for (auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string())
        throw Error(fmt::format("{}: weight_map entry {} is not a file name", index.string(), name));
      std::string s = shard.get<std::string>();
      if (s.find('/') != std::string::npos || s.find("..") != std::string::npos)
        throw Error(fmt::format("{}: shard name {} must be a plain file name", index.string(), s));
      if (std::find(shards.begin(), shards.end(), s) == shards.end()) shards.push_back(s);
    }
    for (auto& s : shards) {
      fs::path p = fs::path(dir) / s;
      if (!fs::exists(p))
        throw Error(fmt::format("checkpoint shard {} (listed in {}) is missing", p.string(), index.string()));
      files.push_back(p.string());
    }
    WeightStore ws = open_files(files);
    for (auto& [name, shard] : j["weight_map"].items())
      if (!ws.has(name))
        throw Error(fmt::format("tensor {} is listed in {} but not found in {}", name, index.string(),
                                shard.get<std::string>()));
    return ws;
  }
  if (!fs::is_directory(dir)) throw Error(fmt::format("checkpoint directory {} does not exist", dir));
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(fmt::format("no .safetensors file in {}", dir));
  return open_files(files);
}

const TensorView& WeightStore::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error(fmt::format("checkpoint has no tensor {}", name));
  return *it->second;
}

const TensorView& WeightStore::get(const std::string& name, const Shape& expected) const {
  const TensorView& t = get(name);
  if (t.shape != expected)
    throw Error(
        fmt::format("checkpoint tensor {} has shape {}, but the config implies {} (config and weights do not "
                    "match)",
                    name, shape_str(t.shape), shape_str(expected)));
  return t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> n;
  for (auto& [k, v] : index_) n.push_back(k);
  return n;
}

uint64_t WeightStore::total_bytes() const {
  uint64_t b = 0;
  for (auto& [k, v] : index_) b += v->bytes;
  return b;
}

std::vector<float> WeightStore::to_f32(const TensorView& t) {
  size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  switch (t.dtype) {
    case StDType::f32:
      if (n) std::memcpy(out.data(), t.data, n * 4);  // (an empty vector's data() may be null)
      break;
    case StDType::bf16:
      for (size_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * k, 2);
        out[k] = bf16_to_f32(h);
      }
      break;
    case StDType::f16:
      for (size_t k = 0; k < n; ++k) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * k, 2);
        out[k] = f16_to_f32(h);
      }
      break;
    default:
      throw Error(fmt::format("tensor {} has dtype {}, expected a floating type (F32, F16, BF16)", t.name,
                              st_dtype_name(t.dtype)));
  }
  return out;
}

Tensor WeightStore::upload(Runtime& rt, const std::string& name, const Shape& expected, DType dtype) const {
  const TensorView& t = get(name, expected);
  if (dtype == DType::bf16 && t.dtype == StDType::bf16) return rt.upload(t.data, t.shape, DType::bf16, name);
  if (dtype == DType::f16 && t.dtype == StDType::f16) return rt.upload(t.data, t.shape, DType::f16, name);
  std::vector<float> f = to_f32(t);
  if (dtype == DType::f32) return rt.upload(f.data(), t.shape, DType::f32, name);
  if (dtype == DType::f16) {
    std::vector<uint16_t> h(f.size());
    for (size_t k = 0; k < f.size(); ++k) h[k] = f32_to_f16(f[k]);
    return rt.upload(h.data(), t.shape, DType::f16, name);
  }
  throw Error(fmt::format("cannot upload weight {} as {}", name, dtype_name(dtype)));
}

}  // namespace dsocr

#include "parity/golden.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <cstring>
#include <filesystem>
#include <memory>

namespace dsocr {
namespace {

// RAII for hid_t handles.
struct Hid {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Hid(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Hid() {
    if (id >= 0 && close) close(id);
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  operator hid_t() const { return id; }
  bool ok() const { return id >= 0; }
};

std::string type_name(hid_t t) {
  H5T_class_t c = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  if (c == H5T_FLOAT) return size == 8 ? "float64" : size == 4 ? "float32" : size == 2 ? "float16" : "float";
  if (c == H5T_INTEGER) {
    bool sign = H5Tget_sign(t) == H5T_SGN_2;
    return fmt::format("{}int{}", sign ? "" : "u", size * 8);
  }
  if (c == H5T_STRING) return "string";
  return "other";
}

// Largest dataset and attribute read (elements): a hostile shape is refused before allocating.
// The biggest golden array (a full-size lm_head weight, 129280 x 1280) is 165 M elements.
constexpr uint64_t kMaxDatasetElems = uint64_t(1) << 28;
constexpr uint64_t kMaxAttrElems = uint64_t(1) << 16;
constexpr int kMaxGroupDepth = 8;

HostArray read_dataset(hid_t file, const std::string& path, const std::string& file_path) {
  Hid ds(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) throw GoldenError(fmt::format("{}: cannot open dataset {}", file_path, path));
  Hid space(H5Dget_space(ds), H5Sclose);
  int rank = space.ok() ? H5Sget_simple_extent_ndims(space) : -1;
  if (rank < 0 || rank > H5S_MAX_RANK)
    throw GoldenError(fmt::format("{}: dataset {} has no simple shape", file_path, path));
  std::vector<hsize_t> dims(rank);
  if (H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0)
    throw GoldenError(fmt::format("{}: dataset {} has no simple shape", file_path, path));
  HostArray a;
  uint64_t n = 1;
  for (auto d : dims) {
    if (d > kMaxDatasetElems || (d && n > kMaxDatasetElems / d))
      throw GoldenError(fmt::format("{}: dataset {} has an absurd shape (a dimension of {})", file_path, path, d));
    n *= d;
    a.shape.push_back(static_cast<int64_t>(d));
  }
  Hid type(H5Dget_type(ds), H5Tclose);
  if (!type.ok()) throw GoldenError(fmt::format("{}: dataset {} has no readable type", file_path, path));
  a.stored_type = type_name(type);
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw GoldenError(fmt::format("{}: dataset {} has type {}, expected float32, int32, int64 or uint8", file_path,
                                  path, a.stored_type));
  // Contiguous, unfiltered data must be all there before we allocate for it.
  Hid dcpl(H5Dget_create_plist(ds), H5Pclose);
  if (dcpl.ok() && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && H5Pget_nfilters(dcpl) == 0) {
    hsize_t stored = H5Dget_storage_size(ds);
    uint64_t want = n * H5Tget_size(type);
    if (stored != 0 && stored != want)
      throw GoldenError(fmt::format("{}: dataset {} of shape {} needs {} bytes but stores {}", file_path, path,
                                    shape_str(a.shape), want, stored));
  }
  if (cls == H5T_FLOAT) {
    a.kind = HostArray::Kind::f32;
    a.f.resize(n);
    if (n && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.f.data()) < 0)
      throw GoldenError(fmt::format("{}: cannot read dataset {}", file_path, path));
  } else {
    a.kind = HostArray::Kind::i64;
    a.i.resize(n);
    if (n && H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.i.data()) < 0)
      throw GoldenError(fmt::format("{}: cannot read dataset {}", file_path, path));
  }
  return a;
}

std::map<std::string, HostArray> read_group(hid_t file, const std::string& group, const std::string& file_path,
                                            int depth = 0) {
  std::map<std::string, HostArray> out;
  if (H5Lexists(file, group.c_str(), H5P_DEFAULT) <= 0) return out;
  if (depth > kMaxGroupDepth)  // also ends a group that links back to its parent
    throw GoldenError(fmt::format("{}: groups nested deeper than {} at {}", file_path, kMaxGroupDepth, group));
  Hid g(H5Gopen2(file, group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) throw GoldenError(fmt::format("{}: {} is not a group", file_path, group));
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) throw GoldenError(fmt::format("{}: cannot list group {}", file_path, group));
  for (hsize_t k = 0; k < info.nlinks; ++k) {
    ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, k, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw GoldenError(fmt::format("{}: cannot list group {}", file_path, group));
    std::string name(static_cast<size_t>(len), '\0');
    if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, k, name.data(), len + 1, H5P_DEFAULT) < 0)
      throw GoldenError(fmt::format("{}: cannot list group {}", file_path, group));
    H5O_info_t oinfo;
#if H5_VERSION_GE(1, 12, 0)
    herr_t got = H5Oget_info_by_name3(g, name.c_str(), &oinfo, H5O_INFO_BASIC, H5P_DEFAULT);
#else
    herr_t got = H5Oget_info_by_name(g, name.c_str(), &oinfo, H5P_DEFAULT);
#endif
    if (got < 0) throw GoldenError(fmt::format("{}: {}/{} cannot be read (dangling link?)", file_path, group, name));
    if (oinfo.type == H5O_TYPE_GROUP) {
      // nested groups: names joined with '/', e.g. taps/blocks/3 -> "blocks/3"
      for (auto& [sub, arr] : read_group(file, group + "/" + name, file_path, depth + 1))
        out.emplace(name + "/" + sub, arr);
    } else {
      out.emplace(name, read_dataset(file, group + "/" + name, file_path));
    }
  }
  return out;
}

AttrValue read_attr(hid_t obj, const std::string& name, const std::string& file_path) {
  auto fail = [&](const char* why) { return GoldenError(fmt::format("{}: attribute {}: {}", file_path, name, why)); };
  Hid a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.ok()) throw fail("cannot be opened");
  Hid type(H5Aget_type(a), H5Tclose);
  Hid space(H5Aget_space(a), H5Sclose);
  if (!type.ok() || !space.ok()) throw fail("cannot be read");
  hssize_t n = H5Sget_simple_extent_npoints(space);
  int rank = H5Sget_simple_extent_ndims(space);
  if (n < 0 || rank < 0) throw fail("has no simple shape");
  if (static_cast<uint64_t>(n) > kMaxAttrElems) throw fail("has too many elements");
  H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_STRING) {
    if (n != 1) throw fail("is a string array (one string expected)");
    if (H5Tis_variable_str(type) > 0) {
      Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type));
      char* s = nullptr;
      if (H5Aread(a, mem, &s) < 0) throw fail("cannot be read");
      std::string v = s ? s : "";
      H5free_memory(s);
      return v;
    }
    size_t size = H5Tget_size(type);
    if (size == 0 || size > kMaxAttrElems) throw fail("has an absurd string length");
    std::string v(size, '\0');
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem, size);
    if (H5Aread(a, mem, v.data()) < 0) throw fail("cannot be read");
    while (!v.empty() && v.back() == '\0') v.pop_back();
    return v;
  }
  if (cls == H5T_INTEGER || cls == H5T_ENUM) {  // h5py stores bools as an enum of int8
    std::vector<int64_t> v(static_cast<size_t>(n));
    if (n == 0) return v;  // an empty array
    if (H5Aread(a, H5T_NATIVE_INT64, v.data()) < 0) throw fail("cannot be read as integers");
    if (rank == 0) return v[0];
    return v;
  }
  if (cls == H5T_FLOAT) {
    std::vector<double> v(static_cast<size_t>(n));
    if (n == 0) return v;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, v.data()) < 0) throw fail("cannot be read as numbers");
    if (rank == 0) return v[0];
    return v;
  }
  throw fail("has an unsupported type");
}

// Everything after opening: root attributes, their checks, the four groups.
GoldenCase read_open_golden(hid_t file, const std::string& path) {
  GoldenCase c;
  c.path = path;
  Hid root(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose);
  if (!root.ok()) throw GoldenError(fmt::format("{}: cannot open the root group", path));
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  herr_t got = H5Oget_info3(root, &info, H5O_INFO_NUM_ATTRS);
#else
  herr_t got = H5Oget_info(root, &info);
#endif
  if (got < 0) throw GoldenError(fmt::format("{}: cannot read the root group (corrupt HDF5?)", path));
  for (hsize_t k = 0; k < info.num_attrs; ++k) {
    ssize_t len = H5Aget_name_by_idx(root, ".", H5_INDEX_NAME, H5_ITER_INC, k, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw GoldenError(fmt::format("{}: cannot list attributes", path));
    std::string name(static_cast<size_t>(len), '\0');
    if (H5Aget_name_by_idx(root, ".", H5_INDEX_NAME, H5_ITER_INC, k, name.data(), len + 1, H5P_DEFAULT) < 0)
      throw GoldenError(fmt::format("{}: cannot list attributes", path));
    c.attrs.emplace(name, read_attr(root, name, path));
  }
  auto fmt_it = c.attrs.find("format");
  if (fmt_it == c.attrs.end() || !std::holds_alternative<std::string>(fmt_it->second) ||
      std::get<std::string>(fmt_it->second) != "dsocr-golden")
    throw GoldenError(fmt::format("{}: root attribute format must be 'dsocr-golden'", path));
  auto ver = c.attrs.find("version");
  if (ver == c.attrs.end() || !std::holds_alternative<int64_t>(ver->second))
    throw GoldenError(fmt::format("{}: root attribute version (int) is missing", path));
  if (std::get<int64_t>(ver->second) != 1)
    throw GoldenError(
        fmt::format("{}: golden schema version {} is not supported (this dsocr reads version 1); "
                    "regenerate the goldens with this repository's reference/",
                    path, std::get<int64_t>(ver->second)));
  auto op = c.attrs.find("op");
  if (op == c.attrs.end() || !std::holds_alternative<std::string>(op->second))
    throw GoldenError(fmt::format("{}: root attribute op (string) is missing", path));
  c.op = std::get<std::string>(op->second);
  c.inputs = read_group(file, "/inputs", path);
  c.weights = read_group(file, "/weights", path);
  c.outputs = read_group(file, "/outputs", path);
  c.taps = read_group(file, "/taps", path);
  return c;
}

}  // namespace

GoldenCase read_golden(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported by us, not printed by HDF5
  if (!std::filesystem::exists(path)) throw GoldenError(fmt::format("{}: no such file", path));
  if (H5Fis_hdf5(path.c_str()) <= 0) throw GoldenError(fmt::format("{}: not an HDF5 file", path));
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) throw GoldenError(fmt::format("{}: cannot open (truncated or corrupt HDF5?)", path));
  return read_open_golden(file, path);
}

GoldenCase read_golden_bytes(const std::vector<uint8_t>& bytes, const std::string& name) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), sig, 8) != 0)
    throw GoldenError(fmt::format("{}: not an HDF5 file", name));
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // The core driver reads from a copy of the image; nothing is written back.
  if (!fapl.ok() || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 ||
      H5Pset_file_image(fapl, const_cast<uint8_t*>(bytes.data()), bytes.size()) < 0)
    throw GoldenError(fmt::format("{}: cannot set up an in-memory HDF5 file", name));
  Hid file(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (!file.ok()) throw GoldenError(fmt::format("{}: cannot open (truncated or corrupt HDF5?)", name));
  return read_open_golden(file, name);
}

int64_t GoldenCase::attr_int(const std::string& k, int64_t fallback) const {
  auto it = attrs.find(k);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  if (auto* d = std::get_if<double>(&it->second)) return static_cast<int64_t>(*d);
  throw GoldenError(fmt::format("{}: attribute {} must be an integer", path, k));
}

int64_t GoldenCase::attr_int(const std::string& k) const {
  if (!has_attr(k)) throw GoldenError(fmt::format("{}: required attribute {} is missing", path, k));
  return attr_int(k, 0);
}

double GoldenCase::attr_float(const std::string& k, double fallback) const {
  auto it = attrs.find(k);
  if (it == attrs.end()) return fallback;
  if (auto* d = std::get_if<double>(&it->second)) return *d;
  if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  throw GoldenError(fmt::format("{}: attribute {} must be a number", path, k));
}

double GoldenCase::attr_float(const std::string& k) const {
  if (!has_attr(k)) throw GoldenError(fmt::format("{}: required attribute {} is missing", path, k));
  return attr_float(k, 0);
}

std::string GoldenCase::attr_str(const std::string& k, const std::string& fallback) const {
  auto it = attrs.find(k);
  if (it == attrs.end()) return fallback;
  if (auto* s = std::get_if<std::string>(&it->second)) return *s;
  throw GoldenError(fmt::format("{}: attribute {} must be a string", path, k));
}

std::vector<int64_t> GoldenCase::attr_ints(const std::string& k, const std::vector<int64_t>& fallback) const {
  auto it = attrs.find(k);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  if (auto* s = std::get_if<int64_t>(&it->second)) return {*s};
  throw GoldenError(fmt::format("{}: attribute {} must be an integer array", path, k));
}

const HostArray* GoldenCase::input_opt(const std::string& k) const {
  auto it = inputs.find(k);
  return it == inputs.end() ? nullptr : &it->second;
}

const HostArray& GoldenCase::input(const std::string& k) const {
  if (auto* a = input_opt(k)) return *a;
  throw GoldenError(fmt::format("{}: missing dataset /inputs/{} (op {})", path, k, op));
}

const HostArray* GoldenCase::weight_opt(const std::string& k) const {
  auto it = weights.find(k);
  return it == weights.end() ? nullptr : &it->second;
}

const HostArray& GoldenCase::weight(const std::string& k) const {
  if (auto* a = weight_opt(k)) return *a;
  throw GoldenError(fmt::format("{}: missing dataset /weights/{} (op {})", path, k, op));
}

}  // namespace dsocr

#include "parity/parity.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "parity/op_cases.h"

namespace dsocr {

Tensor to_device(Runtime& rt, const HostArray& a, const std::string& what) {
  if (a.kind == HostArray::Kind::f32) return rt.upload(a.f.data(), a.shape, DType::f32, what);
  std::vector<int32_t> v(a.i.size());
  for (size_t k = 0; k < v.size(); ++k) {
    if (a.i[k] < INT32_MIN || a.i[k] > INT32_MAX) throw GoldenError(fmt::format("{}: value out of int32 range", what));
    v[k] = static_cast<int32_t>(a.i[k]);
  }
  return rt.upload(v.data(), a.shape, DType::i32, what);
}

HostArray from_device_f32(Runtime& rt, const Tensor& t) {
  HostArray a;
  a.kind = HostArray::Kind::f32;
  a.shape = t.shape;
  a.f = rt.read_f32(t);
  a.stored_type = "float32";
  return a;
}

HostArray from_device_i32(Runtime& rt, const Tensor& t) {
  HostArray a;
  a.kind = HostArray::Kind::i64;
  a.shape = t.shape;
  auto v = rt.read_i32(t);
  a.i.assign(v.begin(), v.end());
  a.stored_type = "int32";
  return a;
}

void expect_shape(const GoldenCase& c, const std::string& name, const HostArray& a, const Shape& want) {
  bool ok = a.shape.size() == want.size();
  for (size_t k = 0; ok && k < want.size(); ++k) ok = want[k] < 0 || want[k] == a.shape[k];
  if (!ok) {
    std::string w;
    for (size_t k = 0; k < want.size(); ++k)
      w += (k ? "," : "") + (want[k] < 0 ? std::string("*") : std::to_string(want[k]));
    throw GoldenError(
        fmt::format("{}: dataset {} has shape {}, expected [{}] (op {})", c.path, name, shape_str(a.shape), w, c.op));
  }
}

CaseViews case_views(Runtime& rt, const GoldenCase& c, const HostArray& global_view) {
  CaseViews v;
  v.global = to_device(rt, global_view, "global_view");
  if (auto* grid = c.input_opt("grid")) {
    expect_shape(c, "inputs/grid", *grid, {2});
    v.cols = static_cast<int>(grid->i.at(0));
    v.rows = static_cast<int>(grid->i.at(1));
  }
  if (auto* t = c.input_opt("tiles"); t && t->numel() > 0) v.tiles = to_device(rt, *t, "tiles");
  return v;
}

namespace {

struct Compared {
  bool pass = true;
  double max_abs = 0, max_rel = 0, rel_l2 = 0;
  std::string note;
};

Compared compare(const HostArray& out, const HostArray& ref, double atol, double rtol, bool model_case) {
  Compared r;
  if (out.shape != ref.shape) {
    r.pass = false;
    r.note = fmt::format("shape {} != expected {}", shape_str(out.shape), shape_str(ref.shape));
    return r;
  }
  size_t n = static_cast<size_t>(ref.numel());
  if (ref.kind == HostArray::Kind::i64) {
    size_t bad = 0, first = 0;
    for (size_t k = 0; k < n; ++k) {
      int64_t o = out.kind == HostArray::Kind::i64 ? out.i[k] : static_cast<int64_t>(out.f[k]);
      if (o != ref.i[k]) {
        if (!bad) first = k;
        ++bad;
        r.max_abs = std::max(r.max_abs, std::fabs(double(o - ref.i[k])));
      }
    }
    if (bad) {
      r.pass = false;
      int64_t o = out.kind == HostArray::Kind::i64 ? out.i[first] : static_cast<int64_t>(out.f[first]);
      r.note = fmt::format("{} of {} differ; first at index {}: got {}, expected {}", bad, n, first, o, ref.i[first]);
    }
    return r;
  }
  double num = 0, den = 0;
  size_t bad = 0, first = 0;
  for (size_t k = 0; k < n; ++k) {
    double o = out.kind == HostArray::Kind::f32 ? out.f[k] : double(out.i[k]);
    double e = ref.f[k];
    bool ok;
    if (std::isfinite(e)) {
      ok = std::isfinite(o) && std::fabs(o - e) <= atol + rtol * std::fabs(e);
      double d = std::isfinite(o) ? std::fabs(o - e) : INFINITY;
      r.max_abs = std::max(r.max_abs, d);
      if (e != 0) r.max_rel = std::max(r.max_rel, d / std::fabs(e));
      num += d * d;
      den += e * e;
    } else {
      ok = std::isnan(e) ? std::isnan(o) : o == e;
    }
    if (!ok) {
      if (!bad) first = k;
      ++bad;
    }
  }
  r.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  if (bad) {
    r.pass = false;
    double o = out.kind == HostArray::Kind::f32 ? out.f[first] : double(out.i[first]);
    r.note = fmt::format("{} of {} outside atol {} + rtol {}; first at index {}: got {:.7g}, expected {:.7g}", bad, n,
                         atol, rtol, first, o, ref.f[first]);
  }
  if (model_case && r.rel_l2 > 1e-3) {
    r.pass = false;
    r.note += fmt::format("{}rel_l2 {:.3g} > 1e-3", r.note.empty() ? "" : "; ", r.rel_l2);
  }
  return r;
}

}  // namespace

ParityTotals run_parity(Runtime& rt, const std::vector<std::string>& files, const ParityOptions& opts) {
  ParityTotals t;
  const auto& ops = parity_ops();
  const auto& pending = parity_ops_pending();
  for (const auto& path : files) {
    std::string name = std::filesystem::path(path).filename().string();
    try {
      GoldenCase c = read_golden(path);
      auto it = ops.find(c.op);
      if (it == ops.end()) {
        if (std::find(pending.begin(), pending.end(), c.op) != pending.end())
          throw NotImplemented(fmt::format("{}: op '{}' is not implemented yet in this dsocr", path, c.op));
        throw GoldenError(fmt::format("{}: unknown op '{}'", path, c.op));
      }
      if (c.outputs.empty()) throw GoldenError(fmt::format("{}: no datasets under /outputs", path));
      ParityOutputs got = it->second(rt, c);
      const Tolerance tol = golden_tolerance(c);  // the file's attributes, else the contract's default
      const double atol = tol.atol, rtol = tol.rtol;
      bool model_case = c.op.rfind("model_", 0) == 0;
      auto report = [&](const std::string& label, const HostArray& ref, bool counted) {
        auto g = got.find(label);
        Compared r;
        if (g == got.end()) {
          r.pass = false;
          r.note = "not produced";
        } else {
          r = compare(g->second, ref, atol, rtol, model_case);
        }
        fmt::print("{}  {}  {}  max_abs={:.3g} max_rel={:.3g} rel_l2={:.3g}  {}{}\n", name, label, shape_str(ref.shape),
                   r.max_abs, r.max_rel, r.rel_l2, r.pass ? "PASS" : "FAIL",
                   r.note.empty() ? "" : "  (" + r.note + ")");
        if (counted) (r.pass ? t.passed : t.failed)++;
      };
      for (auto& [oname, ref] : c.outputs) report(oname, ref, true);
      for (auto& [tname, ref] : c.taps)
        if (got.count("taps/" + tname) || opts.verbose) report("taps/" + tname, ref, got.count("taps/" + tname) > 0);
    } catch (const NotImplemented& e) {
      fmt::print("{}  -  -  not implemented  ({})\n", name, e.what());
      t.unrunnable++;
    } catch (const GoldenError& e) {
      fmt::print("{}  -  -  cannot run  ({})\n", name, e.what());
      t.unrunnable++;
    } catch (const std::exception& e) {
      fmt::print("{}  -  -  ERROR  ({})\n", name, e.what());
      t.failed++;
    }
    std::fflush(stdout);
  }
  for (const auto& n : rt.notes()) fmt::print("note: {}\n", n);
  fmt::print("{} passed, {} failed\n", t.passed, t.failed + t.unrunnable);
  return t;
}

}  // namespace dsocr

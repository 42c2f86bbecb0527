// Op case descriptors: one description per case of an op (its shape, parameters, tolerance and where it is used),
// shared by the op test (tests/ops), the bench (dsocr bench kernels) and the golden writer of the reference
// (reference/dsocr_ref/goldens_ops.py), as CLBlast's routine descriptors serve both its tests and its benchmarks.
//
// The descriptors are data: parity/cases/<op>.json, embedded into dsocr_parity at build time (the reference reads
// the same files). A file is {"op", "about"?, "defaults"?, "cases": [...]}; every case is a flat object:
//   name     unique within the op; a golden-tagged case is the golden file tests/goldens/ops/<name>.h5
//   tags     where it is used: "golden" (written by the golden writer), "test" (run by the op test against its CPU
//            reference), "bench" (timed by dsocr bench kernels at the model's real shapes)
//   atol, rtol   the tolerance (|out - ref| <= atol + rtol |ref|); for a golden case it equals what the file
//            carries, or the contract's default when it carries none (tests check this)
//   seed     of the test's random inputs (default 1); a sweep's i-th case gets seed + i
//   sweep    {"key": [values], "k1,k2": [[v1, v2], ...]}: the case stands for the cartesian product of the axes
//            (first axis outermost), each expanded case named "<name>/key=value,..."; a null value removes the key
//   small    overrides of the other fields for dsocr bench kernels --small
//   any other field is an op parameter, checked against the op's schema (op_cases.cpp): unknown fields, wrong
//   types and values out of range are refused when the file is read, naming the file, the case and the field.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace dsocr {

struct GoldenCase;

// A descriptor file that does not parse or breaks its op's schema.
class OpCaseError : public Error {
 public:
  using Error::Error;
};

struct Tolerance {
  double atol = 0, rtol = 0;
};

struct OpCase {
  std::string op, name;  // name: the descriptor's name, or "<group>/key=value,..." for a case of a sweep
  std::string group;     // the descriptor's name (equal to name unless the case comes from a sweep)
  std::vector<std::string> tags;
  Tolerance tol;
  uint32_t seed = 1;
  nlohmann::ordered_json params;  // the op parameters (every field but name, tags, atol, rtol, seed, sweep, small)
  nlohmann::ordered_json small_overrides;  // the "small" object, or null

  bool has_tag(std::string_view tag) const;
  bool has(const std::string& key) const;  // present and not null
  // Typed reads; a missing required field or a wrong type throws OpCaseError naming the case and the field.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  std::string get_str(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key) const;
  std::vector<double> get_floats(const std::string& key) const;
  // A shape whose entries are numbers or names of the case's integer fields (["B", 1, "Nq", "Nk"]).
  Shape get_shape(const std::string& key) const;
  // The case as dsocr bench kernels --small runs it: the "small" overrides applied (itself when there are none).
  OpCase small() const;
};

// The cases of an op, sweeps expanded, in file order; read from the embedded parity/cases/<op>.json on first use.
// Throws OpCaseError when no file describes the op or the file is malformed.
const std::vector<OpCase>& op_cases(const std::string& op);
// Those of them carrying the tag.
std::vector<OpCase> op_cases(const std::string& op, std::string_view tag);
// The case of that name (an expanded name for a case of a sweep); nullptr when there is none.
const OpCase* find_op_case(const std::string& op, const std::string& name);
// The ops that have a descriptor file.
std::vector<std::string> op_case_ops();
// Parses the text of a descriptor file; `file` names it in messages. Checks it against the op's schema.
std::vector<OpCase> parse_op_cases(std::string_view text, const std::string& file);

// The tolerance a golden file asks for, per the contract (docs/golden-contract.md §2): its root attributes atol and
// rtol, each defaulting to the float32 default.
inline constexpr Tolerance kGoldenDefaultTolerance{1e-4, 1e-3};
Tolerance golden_tolerance(const GoldenCase& c);

}  // namespace dsocr

#include "runtime/tuning.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "runtime/error.h"

namespace dsocr {
namespace {

// The variable's value when set and not empty (an empty variable counts as unset, as before).
const char* env(const char* name) {
  const char* e = std::getenv(name);
  return e && *e ? e : nullptr;
}

bool decode_ok(const Tuning::SdpaDecode& d) {
  return (d.bk == 8 || d.bk == 16 || d.bk == 32 || d.bk == 64) && d.min_keys >= d.bk;
}

// (rk * FL_TK) % 4 with FL_TK = 8 (sdpa.cpp) always holds; kept as the kernel's own rule.
bool tiles_ok(const Tuning::SdpaTiles& t) {
  return t.rq >= 1 && t.rq <= 16 && t.rk >= 1 && t.rk <= 16 && (t.rk * 8) % 4 == 0;
}

bool lanes_ok(int n) { return n == 8 || n == 16 || n == 32 || n == 64 || n == 128; }
bool rows_ok(int n) { return n == 4 || n == 8; }

// Parses "a,b" as sscanf("%d,%d") did (trailing text ignored).
bool two_ints(const char* s, int& a, int& b) { return std::sscanf(s, "%d,%d", &a, &b) == 2; }

std::string on_off(bool b) { return b ? "on" : "off"; }

}  // namespace

Tuning Tuning::from_env() {
  Tuning t;
  auto flag = [&](const char* name, bool& field) {
    if (const char* e = env(name)) {
      field = std::string(e) != "0";
      t.from_environment.insert(name);
    }
  };
  flag("DSOCR_GEMV", t.gemv);
  flag("DSOCR_POOL", t.pool);
  flag("DSOCR_GEMM_TUNING", t.gemm_tuning);
  if (const char* e = env("DSOCR_SDPA_DECODE")) {
    SdpaDecode d;
    if (!two_ints(e, d.bk, d.min_keys) || !decode_ok(d))
      throw Error(fmt::format("DSOCR_SDPA_DECODE='{}': expected bk,min_keys with bk in 8,16,32,64, min_keys >= bk", e));
    t.sdpa_decode = d;
    t.from_environment.insert("DSOCR_SDPA_DECODE");
  }
  if (const char* e = env("DSOCR_SDPA_TILES")) {
    SdpaTiles s;
    if (!two_ints(e, s.rq, s.rk) || !tiles_ok(s))
      throw Error(fmt::format("DSOCR_SDPA_TILES='{}': expected rq,rk with 1 <= rq, rk <= 16", e));
    t.sdpa_tiles = s;
    t.from_environment.insert("DSOCR_SDPA_TILES");
  }
  if (const char* e = env("DSOCR_NORM_NV")) {
    t.norm_nv = std::clamp(std::atoi(e), 1, 8);
    t.from_environment.insert("DSOCR_NORM_NV");
  }
  if (const char* e = env("DSOCR_LN2D_PX")) {
    t.ln2d_px = std::clamp(std::atoi(e), 1, 256);
    t.from_environment.insert("DSOCR_LN2D_PX");
  }
  if (const char* e = env("DSOCR_BATCH_GEMM")) {
    t.batch_gemm_rows = std::max(0, std::atoi(e));
    t.from_environment.insert("DSOCR_BATCH_GEMM");
  }
  if (const char* e = env("DSOCR_GEMV_WIDE")) {
    t.gemv_wide = std::string(e) != "0";
    t.from_environment.insert("DSOCR_GEMV_WIDE");
  }
  if (const char* e = env("DSOCR_GEMV_ROWS")) {
    const int n = std::atoi(e);
    if (!rows_ok(n)) throw Error(fmt::format("DSOCR_GEMV_ROWS='{}': expected 4 or 8", e));
    t.gemv_rows = n;
    t.from_environment.insert("DSOCR_GEMV_ROWS");
  }
  for (auto [name, field] :
       {std::pair{"DSOCR_GEMV_LANES", &Tuning::gemv_lanes}, {"DSOCR_MOE_LANES", &Tuning::moe_lanes}})
    if (const char* e = env(name)) {
      const int n = std::atoi(e);
      if (!lanes_ok(n)) throw Error(fmt::format("{}='{}': expected 8, 16, 32, 64 or 128", name, e));
      t.*field = n;
      t.from_environment.insert(name);
    }
  return t;
}

void Tuning::check() const {
  if (sdpa_decode && !decode_ok(*sdpa_decode))
    throw Error(fmt::format("tuning: sdpa_decode {},{}: expected bk in 8,16,32,64 and min_keys >= bk", sdpa_decode->bk,
                            sdpa_decode->min_keys));
  if (sdpa_tiles && !tiles_ok(*sdpa_tiles))
    throw Error(fmt::format("tuning: sdpa_tiles {},{}: expected 1 <= rq, rk <= 16", sdpa_tiles->rq, sdpa_tiles->rk));
  if (norm_nv < 1 || norm_nv > 8) throw Error(fmt::format("tuning: norm_nv {}: expected 1 to 8", norm_nv));
  if (gemv_lanes && !lanes_ok(*gemv_lanes))
    throw Error(fmt::format("tuning: gemv_lanes {}: expected 8, 16, 32, 64 or 128", *gemv_lanes));
  if (moe_lanes && !lanes_ok(*moe_lanes))
    throw Error(fmt::format("tuning: moe_lanes {}: expected 8, 16, 32, 64 or 128", *moe_lanes));
  if (gemv_rows && !rows_ok(*gemv_rows)) throw Error(fmt::format("tuning: gemv_rows {}: expected 4 or 8", *gemv_rows));
  if (batch_gemm_rows && *batch_gemm_rows < 0)
    throw Error(fmt::format("tuning: batch_gemm_rows {}: expected 0 or more", *batch_gemm_rows));
  if (ln2d_px < 1 || ln2d_px > 256) throw Error(fmt::format("tuning: ln2d_px {}: expected 1 to 256", ln2d_px));
}

nlohmann::ordered_json Tuning::to_json() const {
  using J = nlohmann::ordered_json;
  J j;
  j["gemv"] = gemv;
  j["sdpa_decode"] = sdpa_decode ? J{{"bk", sdpa_decode->bk}, {"min_keys", sdpa_decode->min_keys}} : J("auto");
  j["sdpa_tiles"] = sdpa_tiles ? J{{"rq", sdpa_tiles->rq}, {"rk", sdpa_tiles->rk}} : J("auto");
  j["norm_nv"] = norm_nv;
  j["ln2d_px"] = ln2d_px;
  auto opt = [](const std::optional<int>& v) { return v ? J(*v) : J("auto"); };
  j["gemv_lanes"] = opt(gemv_lanes);
  j["moe_lanes"] = opt(moe_lanes);
  j["gemv_rows"] = opt(gemv_rows);
  j["gemv_wide"] = gemv_wide ? J(*gemv_wide) : J("auto");
  j["batch_gemm_rows"] = opt(batch_gemm_rows);
  j["pool"] = pool;
  j["gemm_tuning"] = gemm_tuning;
  j["from_environment"] = J::array();
  for (const auto& v : from_environment) j["from_environment"].push_back(v);
  return j;
}

std::string Tuning::describe(const std::string& indent) const {
  std::string s;
  auto line = [&](const char* field, const std::string& value, const char* var, const std::string& meaning) {
    const std::string from = from_environment.count(var) ? var : "default";
    s += fmt::format("{}{:<12} {:<10} {:<18} {}\n", indent, field, value, from, meaning);
  };
  line("gemv", on_off(gemv), "DSOCR_GEMV", "matrix-vector kernel for linear() of <= 4 rows (off: CLBlast)");
  line("sdpa_decode", sdpa_decode ? fmt::format("{},{}", sdpa_decode->bk, sdpa_decode->min_keys) : "auto",
       "DSOCR_SDPA_DECODE", "decode attention key tile, fewest keys per split (auto: 32,64)");
  line("sdpa_tiles", sdpa_tiles ? fmt::format("{},{}", sdpa_tiles->rq, sdpa_tiles->rk) : "auto", "DSOCR_SDPA_TILES",
       "flash attention query rows, keys per work-item (auto: 4,4 for D <= 64, else 2,2)");
  line("norm_nv", std::to_string(norm_nv), "DSOCR_NORM_NV", "vecs per work-item of the row norms");
  line("ln2d_px", std::to_string(ln2d_px), "DSOCR_LN2D_PX", "pixels per work-group of LayerNorm2d");
  auto opt = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string("auto"); };
  line("gemv_lanes", opt(gemv_lanes), "DSOCR_GEMV_LANES",
       "work-items per output of the matrix-vector kernel (auto: 128 on a GPU, 32 on a CPU)");
  line("moe_lanes", opt(moe_lanes), "DSOCR_MOE_LANES",
       "work-items per output of the MoE decode kernels (auto: 64 on a GPU, else 32)");
  line("gemv_rows", opt(gemv_rows), "DSOCR_GEMV_ROWS",
       "rows per chunk of the matrix-vector kernel (auto: 4 on a GPU, 8 on a CPU)");
  line("gemv_wide", gemv_wide ? on_off(*gemv_wide) : "auto", "DSOCR_GEMV_WIDE",
       "8-element weight loads in the matrix-vector kernel (auto: off on a GPU, on on a CPU)");
  line("batch_gemm_rows", opt(batch_gemm_rows), "DSOCR_BATCH_GEMM",
       "decode batches of this many rows take the GEMM paths (0: never; auto: 16 on a GPU, else never)");
  line("pool", on_off(pool), "DSOCR_POOL", "reuse of freed device buffers");
  line("gemm_tuning", on_off(gemm_tuning), "DSOCR_GEMM_TUNING", "apply the stored CLBlast tuning (dsocr tune)");
  return s;
}

bool Tuning::operator==(const Tuning& o) const {
  return gemv == o.gemv && sdpa_decode == o.sdpa_decode && sdpa_tiles == o.sdpa_tiles && norm_nv == o.norm_nv &&
         ln2d_px == o.ln2d_px && gemv_lanes == o.gemv_lanes && moe_lanes == o.moe_lanes && gemv_rows == o.gemv_rows &&
         gemv_wide == o.gemv_wide && batch_gemm_rows == o.batch_gemm_rows && pool == o.pool &&
         gemm_tuning == o.gemm_tuning;
}

}  // namespace dsocr

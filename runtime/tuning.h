// Tuning: every performance knob of one device in one place. The ops read them from
// Runtime::tuning() (set through RuntimeOptions); nothing below runtime/ reads the environment for
// them. The dsocr command fills a Tuning from its environment once (Tuning::from_env, the
// variables of README's "Profiling and tuning knobs"); tests and tools that build a Runtime
// themselves get the defaults unless they set fields.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

namespace dsocr {

struct Tuning {
  // Key tile (DEC_BK) of the decode attention kernel and the fewest keys one key split takes.
  struct SdpaDecode {
    int bk = 32, min_keys = 64;
    bool operator==(const SdpaDecode&) const = default;
  };
  // Query rows and keys per work-item of the flash attention kernel.
  struct SdpaTiles {
    int rq = 4, rk = 4;
    bool operator==(const SdpaTiles&) const = default;
  };

  bool gemv = true;  // DSOCR_GEMV=0: linear() of at most 4 rows through CLBlast, not the gemv kernel
  // DSOCR_SDPA_DECODE=bk,min_keys; unset: 32,64.
  std::optional<SdpaDecode> sdpa_decode;
  // DSOCR_SDPA_TILES=rq,rk; unset: chosen by head dim (4,4 for D <= 64, 2,2 above), both halved
  // while the device's local memory is too small either way.
  std::optional<SdpaTiles> sdpa_tiles;
  int norm_nv = 4;   // DSOCR_NORM_NV: vecs per work-item of the row norms, 1..8
  int ln2d_px = 16;  // DSOCR_LN2D_PX: pixels per work-group of LayerNorm2d, 1..256 (rounded down to 2^n)
  // Device-dependent knobs: unset means the default for the device's type (the *_for accessors;
  // the defaults were measured: docs/targets.md, "Decode kernels per device type").
  // DSOCR_GEMV_LANES: work-items per output of the matrix-vector kernel (8, 16, 32, 64 or 128).
  std::optional<int> gemv_lanes;
  // DSOCR_MOE_LANES: the same for the MoE decode kernels (ops::moe_decode).
  std::optional<int> moe_lanes;
  // DSOCR_GEMV_ROWS: rows per chunk of the matrix-vector kernel for two or more rows (4 or 8).
  std::optional<int> gemv_rows;
  // DSOCR_GEMV_WIDE=0: the matrix-vector kernel loads weights element by element instead of in
  // 8-element pieces.
  std::optional<bool> gemv_wide;
  // DSOCR_BATCH_GEMM: a decode batch of at least this many sequences runs its dense products and
  // MoE blocks through the GEMM paths (CLBlast, the grouped expert GEMM) instead of the
  // matrix-vector kernels: rows then agree with their one-sequence results within rounding, not
  // bit for bit. 0: never.
  std::optional<int> batch_gemm_rows;
  bool pool = true;         // DSOCR_POOL=0: no reuse of freed device buffers
  bool gemm_tuning = true;  // DSOCR_GEMM_TUNING=0: the stored CLBlast tuning is not applied

  // The environment variables that set a field (from_env); describe() and to_json() name them.
  std::set<std::string> from_environment;

  // The defaults with every variable set (non-empty) in the environment applied. Throws Error
  // naming the variable and what it expects for a value it does not accept (DSOCR_SDPA_DECODE,
  // DSOCR_SDPA_TILES, DSOCR_GEMV_LANES, DSOCR_MOE_LANES, DSOCR_GEMV_ROWS); DSOCR_NORM_NV and DSOCR_LN2D_PX are clamped
  // into their ranges, DSOCR_BATCH_GEMM to 0 or more; DSOCR_GEMV, DSOCR_GEMV_WIDE, DSOCR_POOL and DSOCR_GEMM_TUNING are
  // off for "0", on for anything else.
  static Tuning from_env();

  // Throws Error naming the field for a value the kernels cannot run (what from_env refuses or
  // clamps); Runtime checks its Tuning once when created, so the ops need not.
  void check() const;

  // The decode tiles in force (sdpa_decode, or the default).
  SdpaDecode decode() const { return sdpa_decode.value_or(SdpaDecode{}); }
  // The values in force on a device (gpu: whether it is a GPU): the field, or that type's default.
  // On a GPU the matrix-vector kernel defaults to 128 lanes, 4-row chunks and element loads: the
  // work-group-per-output kernel of df0f40b, faster there than the lane groups a CPU gets.
  int gemv_lanes_for(bool gpu) const { return gemv_lanes.value_or(gpu ? 128 : 32); }
  int gemv_rows_for(bool gpu) const { return gemv_rows.value_or(gpu ? 4 : 8); }
  bool gemv_wide_for(bool gpu) const { return gemv_wide.value_or(!gpu); }
  int moe_lanes_for(bool gpu) const { return moe_lanes.value_or(gpu ? 64 : 32); }
  int batch_gemm_for(bool gpu) const { return batch_gemm_rows.value_or(gpu ? 16 : 0); }

  // {"gemv": true, "sdpa_decode": "auto" | {"bk", "min_keys"}, "sdpa_tiles": "auto" | {"rq", "rk"},
  //  "norm_nv", "ln2d_px", "gemv_lanes", "moe_lanes", "gemv_rows", "gemv_wide", "batch_gemm_rows": "auto" | value,
  //  "pool", "gemm_tuning", "from_environment": [variable names]}.
  nlohmann::ordered_json to_json() const;
  // One line per field: name, value, and where it came from ("default" or the variable), e.g.
  // "sdpa_tiles    2,2    DSOCR_SDPA_TILES". Each line starts with `indent`.
  std::string describe(const std::string& indent = {}) const;

  // Equal values (where they came from is not compared).
  bool operator==(const Tuning& o) const;
};

}  // namespace dsocr

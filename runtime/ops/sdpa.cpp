#include "runtime/ops/sdpa.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <map>
#include <string>
#include <utility>

#include "runtime/ops/weight_format.h"

namespace dsocr::ops {

namespace {

constexpr int64_t kMaxHeadDim = 128;
// Work-group shapes of sdpa.cl (its defaults, passed explicitly so that the host knows them).
constexpr int kFlashTQ = 16, kFlashTK = 8;
constexpr int kDecNT = 128;

constexpr int kFlagDense = 1, kFlagRelPos = 2, kFlagCausal = 4;

Shape dense_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// The flash kernel's tile shape for head dim D: work-group kFlashTQ x kFlashTK, rq query rows and
// rk keys per work-item, dc4 float4 output chunks per work-item.
struct FlashTiles {
  int rq, rk, dc4;
  int bq() const { return rq * kFlashTQ; }
  int bk() const { return rk * kFlashTK; }
  size_t local_bytes() const {
    size_t ld = 4 * dc4 * kFlashTK + 4;
    return 4 * (bq() * ld + bk() * ld + bq() * (bk() + 4));
  }
};

// Tuning::sdpa_tiles ($DSOCR_SDPA_TILES = "rq,rk") overrides the choice below (tile sweeps in
// benchmarks); Runtime has checked it.
FlashTiles flash_tiles(int64_t D, uint64_t local_mem, const Tuning& tuning) {
  // 64 query rows x 32 keys for D <= 64 where local memory allows (35 KiB; H200: SAM's global
  // attention 4.27 -> 3.86 ms against 32 x 32), halved on 32 KiB devices; 32 x 16 for D <= 128.
  FlashTiles t{D > 64 ? 2 : 4, D > 64 ? 2 : 4, static_cast<int>(ceil_div(D, 4 * kFlashTK))};
  if (tuning.sdpa_tiles) {
    t.rq = tuning.sdpa_tiles->rq;
    t.rk = tuning.sdpa_tiles->rk;
  }
  while (t.local_bytes() > local_mem && (t.rq > 1 || t.rk > 1)) {  // small-local-memory devices
    if (t.rq > 1)
      t.rq /= 2;
    else
      t.rk /= 2;
  }
  if (t.local_bytes() > local_mem)
    throw NotImplemented(
        fmt::format("sdpa: D={} needs {} bytes of local memory, the device has {}", D, t.local_bytes(), local_mem));
  return t;
}

// Mesa's llvmpipe stops every loop of a work-item once the work-item has run 65535 loop iterations
// in all (gallivm's loop limiter), silently. The kernels run about 2-4 iterations per key (measured:
// flash D=64 ~2, D=128 ~4; decode ~2), so on llvmpipe the keys per work-group are capped far below.
int64_t max_keys_per_group(const DeviceInfo& dev, int64_t D) {
  if (dev.name.find("llvmpipe") == std::string::npos) return INT64_MAX;
  return D > 64 ? 4096 : 8192;
}

// The program's defines for flash tiles ft at head dim D with decode key tile dec_bk: one program
// per head dim holds both variants.
Defines sdpa_defines(int64_t D, const FlashTiles& ft, int dec_bk) {
  return Defines{{"HEAD_DIM", std::to_string(D)},     {"FL_TQ", std::to_string(kFlashTQ)},
                 {"FL_TK", std::to_string(kFlashTK)}, {"FL_RQ", std::to_string(ft.rq)},
                 {"FL_RK", std::to_string(ft.rk)},    {"FL_DC4", std::to_string(ft.dc4)},
                 {"DEC_NT", std::to_string(kDecNT)},  {"DEC_BK", std::to_string(dec_bk)}};
}

// The flash tiles chosen for one (head dim, decode key tile) on one Runtime and their defines.
struct FlashChoice {
  FlashTiles tiles;
  Defines defines;
};
// Per Runtime (Runtime::op_state): the choices made so far. The rest of the defines follows from
// the key, the device's local memory and the Runtime's Tuning, all fixed for the Runtime.
struct FlashChoices {
  std::map<std::pair<int64_t, int>, FlashChoice> by_key;
};

// The tuned tiles first; where the device cannot build or fit them (an unusual compiler or
// register file), halved towards 1 x 1 (Runtime::try_kernel notes each refusal). Runs once per
// (D, dec_bk) and Runtime: the decode hot path then finds its choice in a map.
const FlashChoice& flash_choice(Runtime& rt, int64_t D, int dec_bk) {
  FlashChoices& memo = rt.op_state<FlashChoices>();
  const std::pair<int64_t, int> key{D, dec_bk};
  if (auto it = memo.by_key.find(key); it != memo.by_key.end()) return it->second;
  FlashTiles t = flash_tiles(D, rt.device().local_mem, rt.tuning());
  Defines defs = sdpa_defines(D, t, dec_bk);
  while (!rt.try_kernel("sdpa.cl", "sdpa_flash_f32", defs)) {
    if (t.rq == 1 && t.rk == 1) {
      rt.kernel("sdpa.cl", "sdpa_flash_f32", defs);  // throws the build error with its log
      throw Error(fmt::format("sdpa: no flash attention variant fits {} (D={})", rt.device().label(), D));
    }
    if (t.rq >= t.rk)
      t.rq = std::max(1, t.rq / 2);
    else
      t.rk = std::max(1, t.rk / 2);
    defs = sdpa_defines(D, t, dec_bk);
  }
  return memo.by_key.emplace(key, FlashChoice{t, std::move(defs)}).first->second;
}

int to_int(int64_t v, const char* what) {
  if (v > INT_MAX) throw NotImplemented(fmt::format("sdpa: {} = {} exceeds the 32-bit index range", what, v));
  return static_cast<int>(v);
}

// The decode kernel's key splits for `rows` query rows over Nk keys: enough work-groups for the
// device (at least min_keys keys each), never more keys per work-group than the device allows;
// -> (nsplit, keys per split). sdpa() and sdpa_decode_batch_plan() both decide by this rule, so a
// sequence of a batch is split as it would be alone.
std::pair<int64_t, int64_t> decode_splits(Runtime& rt, int64_t rows, int64_t Nk, int64_t D, int kv_splits) {
  const Tuning::SdpaDecode dt = rt.tuning().decode();
  int64_t nsplit = kv_splits;
  if (nsplit <= 0) {
    int64_t want = ceil_div(4 * std::max<uint32_t>(rt.device().compute_units, 1), rows);
    int64_t most = ceil_div(Nk, dt.min_keys);  // at least min_keys keys per split
    nsplit = std::clamp<int64_t>(want, 1, most);
  }
  nsplit = std::max<int64_t>(nsplit, ceil_div(Nk, max_keys_per_group(rt.device(), D)));
  return {nsplit, round_up(ceil_div(Nk, nsplit), dt.bk)};
}

}  // namespace

void AttnView::check(const char* op, const char* name, bool kv) const {
  const AttnView& v = *this;
  if (!v.t.defined()) throw Error(fmt::format("{}: {} has no tensor", op, name));
  const bool ok = v.t.dtype == DType::f32 || (kv && (v.t.dtype == DType::f16 || v.t.dtype == DType::bf16));
  if (!ok)
    throw Error(fmt::format("{}: {} must be f32{}, got {} {}", op, name, kv ? ", f16 or bf16" : "",
                            dtype_name(v.t.dtype), shape_str(v.t.shape)));
  if (v.B < 1 || v.H < 1 || v.N < 1 || v.D < 1)
    throw Error(fmt::format("{}: {} view shape {} has an empty dimension", op, name, shape_str(v.shape())));
  if (v.sb < 0 || v.sh < 0 || v.sn < 0)
    throw Error(fmt::format("{}: {} view has a negative stride (sb {}, sh {}, sn {})", op, name, v.sb, v.sh, v.sn));
  int64_t last = static_cast<int64_t>(v.offset) + (v.B - 1) * v.sb + (v.H - 1) * v.sh + (v.N - 1) * v.sn + v.D;
  if (last > v.t.numel())
    throw Error(fmt::format(
        "{}: {} view {} (offset {}, strides {},{},{}) reaches element {} of a tensor {} with {} elements", op, name,
        shape_str(v.shape()), v.offset, v.sb, v.sh, v.sn, last, shape_str(v.t.shape), v.t.numel()));
}

AttnView AttnView::bhnd(const Tensor& t) {
  if (t.rank() != 4) throw Error(fmt::format("AttnView::bhnd: expected [B,H,N,D], got {}", shape_str(t.shape)));
  const auto& s = t.shape;
  return AttnView{t, 0, s[0], s[1], s[2], s[3], s[1] * s[2] * s[3], s[2] * s[3], s[3]};
}

AttnView AttnView::bnhd(const Tensor& t) {
  if (t.rank() != 4) throw Error(fmt::format("AttnView::bnhd: expected [B,N,H,D], got {}", shape_str(t.shape)));
  const auto& s = t.shape;
  return AttnView{t, 0, s[0], s[2], s[1], s[3], s[1] * s[2] * s[3], s[3], s[2] * s[3]};
}

AttnView AttnView::fused(const Tensor& t, int which) {
  if (t.rank() != 5) throw Error(fmt::format("AttnView::fused: expected [B,N,S,H,D], got {}", shape_str(t.shape)));
  const auto& s = t.shape;
  if (which < 0 || which >= s[2])
    throw Error(fmt::format("AttnView::fused: part {} of {} (tensor {})", which, s[2], shape_str(t.shape)));
  int64_t sn = s[2] * s[3] * s[4];
  return AttnView{t, static_cast<size_t>(which * s[3] * s[4]), s[0], s[3], s[1], s[4], s[1] * sn, s[4], sn};
}

AttnView AttnView::heads(const Tensor& t, int64_t h0, int64_t H) {
  if (t.rank() != 4) throw Error(fmt::format("AttnView::heads: expected [B,N,Htot,D], got {}", shape_str(t.shape)));
  const auto& s = t.shape;
  if (h0 < 0 || H < 1 || h0 + H > s[2])
    throw Error(fmt::format("AttnView::heads: heads [{},{}) of a tensor {}", h0, h0 + H, shape_str(t.shape)));
  int64_t sn = s[2] * s[3];
  return AttnView{t, static_cast<size_t>(h0 * s[3]), s[0], H, s[1], s[3], s[1] * sn, s[3], sn};
}

AttnBias AttnBias::dense(const Tensor& t) {
  if (t.rank() < 2 || t.rank() > 4)
    throw Error(fmt::format("AttnBias::dense: expected [Nq,Nk], [B,Nq,Nk] or [B,H,Nq,Nk], got {}", shape_str(t.shape)));
  Shape s = t.shape, st = dense_strides(t.shape);
  while (s.size() < 4) {
    s.insert(s.begin(), 1);
    st.insert(st.begin(), 0);
  }
  AttnBias b;
  b.t = t;
  b.B = s[0];
  b.H = s[1];
  b.Nq = s[2];
  b.Nk = s[3];
  b.sb = s[0] == 1 ? 0 : st[0];
  b.sh = s[1] == 1 ? 0 : st[1];
  b.sq = st[2];
  return b;
}

namespace {

// The optional dense bias and SAM rel-pos terms of a call, checked against [B,H,Nq,Nk], as the
// kernels take them (placeholders of q's buffer and zero strides when absent).
struct BiasArgs {
  Tensor bias, relh, relw;
  int64_t b_off = 0, b_sb = 0, b_sh = 0, b_sq = 0;
  int kh = 0, kw = 0;
  int flags = 0;
};

BiasArgs bias_args(const SdpaParams& p, const Tensor& placeholder, int64_t B, int64_t H, int64_t Nq, int64_t Nk) {
  auto expect = [](const char* name, const Shape& got, const Shape& want) {
    if (got != want) throw Error(fmt::format("sdpa: {} is {}, expected {}", name, shape_str(got), shape_str(want)));
  };
  BiasArgs a;
  a.bias = a.relh = a.relw = placeholder;
  a.flags = p.causal ? kFlagCausal : 0;
  if (p.bias) {
    const AttnBias& bb = *p.bias;
    if (!bb.t.defined()) throw Error("sdpa: bias has no tensor");
    if (bb.t.dtype != DType::f32) throw Error(fmt::format("sdpa: bias must be f32, got {}", dtype_name(bb.t.dtype)));
    if ((bb.B != 1 && bb.B != B) || (bb.H != 1 && bb.H != H) || (bb.Nq != 1 && bb.Nq != Nq) || bb.Nk != Nk)
      throw Error(fmt::format("sdpa: bias [{},{},{},{}] does not broadcast to [B,H,Nq,Nk] = [{},{},{},{}]", bb.B, bb.H,
                              bb.Nq, bb.Nk, B, H, Nq, Nk));
    a.b_sb = bb.B == 1 ? 0 : bb.sb;
    a.b_sh = bb.H == 1 ? 0 : bb.sh;
    a.b_sq = bb.Nq == 1 ? 0 : bb.sq;  // one row for every query (a per-key bias)
    if (a.b_sb < 0 || a.b_sh < 0 || a.b_sq < 0) throw Error("sdpa: bias has a negative stride");
    int64_t last = static_cast<int64_t>(bb.offset) + (bb.B - 1) * a.b_sb + (bb.H - 1) * a.b_sh + (Nq - 1) * a.b_sq + Nk;
    if (last > bb.t.numel())
      throw Error(fmt::format("sdpa: bias view (offset {}, strides {},{},{}) reaches element {} of a tensor {}",
                              bb.offset, a.b_sb, a.b_sh, a.b_sq, last, shape_str(bb.t.shape)));
    a.bias = bb.t;
    a.b_off = static_cast<int64_t>(bb.offset);
    a.flags |= kFlagDense;
  }
  if (p.rel_pos) {
    const RelPosBias& rp = *p.rel_pos;
    if (!rp.rel_h.defined() || !rp.rel_w.defined()) throw Error("sdpa: rel_pos needs both rel_h and rel_w");
    if (rp.rel_h.dtype != DType::f32 || rp.rel_w.dtype != DType::f32) throw Error("sdpa: rel_h and rel_w must be f32");
    if (rp.rel_h.rank() != 4 || rp.rel_w.rank() != 4)
      throw Error(fmt::format("sdpa: rel_h {} and rel_w {} must be [B,H,Nq,kh] and [B,H,Nq,kw]",
                              shape_str(rp.rel_h.shape), shape_str(rp.rel_w.shape)));
    a.kh = to_int(rp.rel_h.dim(3), "kh");
    a.kw = to_int(rp.rel_w.dim(3), "kw");
    expect("rel_h", rp.rel_h.shape, {B, H, Nq, a.kh});
    expect("rel_w", rp.rel_w.shape, {B, H, Nq, a.kw});
    if (static_cast<int64_t>(a.kh) * a.kw != Nk)
      throw Error(fmt::format("sdpa: rel_pos key grid {}x{} = {} keys, but k has Nk = {}", a.kh, a.kw,
                              static_cast<int64_t>(a.kh) * a.kw, Nk));
    a.relh = rp.rel_h;
    a.relw = rp.rel_w;
    a.flags |= kFlagRelPos;
  }
  return a;
}

}  // namespace

void sdpa(Runtime& rt, const AttnView& q, const AttnView& k, const AttnView& v, const AttnView& out,
          const SdpaParams& p) {
  q.check("sdpa", "q");
  k.check("sdpa", "k", true);
  v.check("sdpa", "v", true);
  out.check("sdpa", "out");
  if (v.t.dtype != k.t.dtype)
    throw Error(fmt::format("sdpa: v is {}, k {}: K and V must share one storage", dtype_name(v.t.dtype),
                            dtype_name(k.t.dtype)));
  const int64_t B = q.B, H = q.H, Nq = q.N, D = q.D, Hkv = k.H, Nk = k.N;
  auto expect = [](const char* name, const Shape& got, const Shape& want) {
    if (got != want) throw Error(fmt::format("sdpa: {} is {}, expected {}", name, shape_str(got), shape_str(want)));
  };
  if (k.B != B || k.D != D)
    throw Error(fmt::format("sdpa: k is {}, expected [{},Hkv,Nk,{}] to match q {}", shape_str(k.shape()), B, D,
                            shape_str(q.shape())));
  expect("v", v.shape(), k.shape());
  expect("out", out.shape(), q.shape());
  if (H % Hkv != 0)
    throw Error(
        fmt::format("sdpa: q has {} heads, not a multiple of the {} kv heads of k {}", H, Hkv, shape_str(k.shape())));
  if (D > kMaxHeadDim)
    throw NotImplemented(fmt::format("sdpa: head dim D={} (q {}) is over the supported maximum {}", D,
                                     shape_str(q.shape()), kMaxHeadDim));
  to_int(B * H * Nq, "B*H*Nq");
  to_int(Nk, "Nk");

  const BiasArgs ba = bias_args(p, q.t, B, H, Nq, Nk);
  if (p.causal_prefix < 0 || p.causal_prefix > Nk || (p.causal_prefix > 0 && !p.causal))
    throw Error(fmt::format("sdpa: causal_prefix {} must be in 0..Nk = {} and needs causal", p.causal_prefix, Nk));
  const cl_int prefix = static_cast<cl_int>(p.causal_prefix);
  SdpaAlgo algo = p.algo;
  if (algo == SdpaAlgo::automatic) algo = Nq == 1 ? SdpaAlgo::decode : SdpaAlgo::flash;
  const cl_int iH = static_cast<cl_int>(H), group = static_cast<cl_int>(H / Hkv);
  const cl_int iNq = static_cast<cl_int>(Nq), iNk = static_cast<cl_int>(Nk);
  const cl_float scale = p.scale;
  auto off = [](const AttnView& a) { return static_cast<int64_t>(a.offset); };

  const int64_t rows = B * H * Nq;
  auto make_part = [&](int64_t nsplit) {
    if (nsplit == 1) return q.t;  // unused
    to_int(rows * nsplit, "B*H*Nq*splits");
    return rt.empty({rows * nsplit * (D + 2)}, DType::f32, "sdpa partials");
  };
  auto combine = [&](const Defines& defs, const Tensor& part, int64_t nsplit) {
    if (nsplit == 1) return;
    auto& comb = rt.kernel("sdpa_decode.cl", "sdpa_combine_f32", defs);
    rt.launch(comb, cl::NDRange(round_up(D, 32), rows), cl::NDRange(32, 1), part, static_cast<cl_int>(nsplit), out.t,
              off(out), out.sb, out.sh, out.sn, iH, iNq);
  };

  const int64_t max_keys = max_keys_per_group(rt.device(), D);
  const Tuning::SdpaDecode dt = rt.tuning().decode();
  const FlashChoice& fc = flash_choice(rt, D, dt.bk);
  const FlashTiles& t = fc.tiles;
  Defines defs = fc.defines;
  add_kv_define(defs, k.t.dtype);
  if (algo == SdpaAlgo::flash) {
    const int64_t qtiles = ceil_div(Nq, t.bq());
    int64_t nsplit = p.kv_splits > 0 ? p.kv_splits : 1;
    nsplit = std::max<int64_t>(nsplit, ceil_div(Nk, max_keys));
    const int64_t chunk = round_up(ceil_div(Nk, nsplit), t.bk());
    to_int(qtiles * nsplit, "query tiles * splits");
    Tensor part = make_part(nsplit);
    auto& kern = rt.kernel("sdpa.cl", "sdpa_flash_f32", defs);
    const size_t nt = kFlashTQ * kFlashTK;
    rt.launch(kern, cl::NDRange(nt, qtiles * nsplit, B * H), cl::NDRange(nt, 1, 1),                         //
              q.t, off(q), q.sb, q.sh, q.sn, k.t, off(k), k.sb, k.sh, k.sn, v.t, off(v), v.sb, v.sh, v.sn,  //
              out.t, off(out), out.sb, out.sh, out.sn, ba.bias, ba.b_off, ba.b_sb, ba.b_sh, ba.b_sq, ba.relh, ba.relw,
              static_cast<cl_int>(ba.kh), static_cast<cl_int>(ba.kw), iH, group, iNq, iNk, scale,
              static_cast<cl_int>(ba.flags), prefix, static_cast<cl_int>(nsplit), static_cast<cl_int>(chunk), part);
    combine(defs, part, nsplit);
    return;
  }

  // Decode: split the keys so that the device has enough work-groups.
  const auto [nsplit, chunk] = decode_splits(rt, rows, Nk, D, p.kv_splits);
  Tensor part = make_part(nsplit);
  auto& kern = rt.kernel("sdpa_decode.cl", "sdpa_decode_f32", defs);
  rt.launch(kern, cl::NDRange(kDecNT, nsplit, rows), cl::NDRange(kDecNT, 1, 1),                           //
            q.t, off(q), q.sb, q.sh, q.sn, k.t, off(k), k.sb, k.sh, k.sn, v.t, off(v), v.sb, v.sh, v.sn,  //
            out.t, off(out), out.sb, out.sh, out.sn, ba.bias, ba.b_off, ba.b_sb, ba.b_sh, ba.b_sq, ba.relh, ba.relw,
            static_cast<cl_int>(ba.kh), static_cast<cl_int>(ba.kw), iH, group, iNq, iNk, scale,
            static_cast<cl_int>(ba.flags), prefix, static_cast<cl_int>(nsplit), static_cast<cl_int>(chunk), part);
  combine(defs, part, nsplit);
}

SdpaDecodeBatch sdpa_decode_batch_plan(Runtime& rt, int64_t H, int64_t D, const std::vector<int64_t>& first_row,
                                       const std::vector<int64_t>& n_keys) {
  if (first_row.size() != n_keys.size() || first_row.empty())
    throw Error(fmt::format("sdpa_decode_batch: {} first rows for {} key counts (one each, at least one sequence)",
                            first_row.size(), n_keys.size()));
  if (H < 1 || D < 1 || D > kMaxHeadDim)
    throw Error(fmt::format("sdpa_decode_batch: H = {} heads of D = {} (D in 1..{})", H, D, kMaxHeadDim));
  SdpaDecodeBatch plan;
  plan.B = static_cast<int64_t>(first_row.size());
  plan.H = H;
  plan.D = D;
  std::vector<int32_t> seq(static_cast<size_t>(plan.B) * 5);
  for (int64_t b = 0; b < plan.B; ++b) {
    if (n_keys[b] < 1 || first_row[b] < 0)
      throw Error(fmt::format("sdpa_decode_batch: sequence {} has {} keys from row {}", b, n_keys[b], first_row[b]));
    const auto [nsplit, chunk] = decode_splits(rt, H, n_keys[b], D, 0);  // as sdpa() for this sequence alone
    int32_t* sp = seq.data() + b * 5;
    sp[0] = to_int(first_row[b], "first cache row");
    sp[1] = to_int(n_keys[b], "Nk");
    sp[2] = to_int(nsplit, "splits");
    sp[3] = to_int(chunk, "keys per split");
    sp[4] = to_int(plan.part_floats, "partials");
    if (nsplit > 1) plan.part_floats += H * nsplit * (D + 2);
    plan.max_split = std::max(plan.max_split, nsplit);
    plan.rows_needed = std::max(plan.rows_needed, first_row[b] + n_keys[b]);
  }
  to_int(plan.part_floats, "partials");
  plan.seq = rt.upload(seq, {plan.B, 5});
  return plan;
}

void sdpa_decode_batch(Runtime& rt, const Tensor& q, int64_t q_sb, Tensor& kv_cache, const SdpaDecodeBatch& plan,
                       Tensor& out, int64_t o_sb, float scale, const DecodeAppend* append) {
  constexpr const char* op = "sdpa_decode_batch";
  const int64_t B = plan.B, H = plan.H, D = plan.D;
  if (!kv_cache.defined() || kv_cache.rank() != 4 || kv_cache.dim(1) != 2 || kv_cache.dim(3) != D ||
      H % kv_cache.dim(2) != 0)
    throw Error(fmt::format("{}: kv cache is {}, expected [rows,2,Hkv,{}] with {} a multiple of Hkv", op,
                            kv_cache.defined() ? shape_str(kv_cache.shape) : "undefined", D, H));
  const DType kv = kv_cache.dtype;
  if (kv != DType::f32 && kv != DType::f16 && kv != DType::bf16)
    throw Error(fmt::format("{}: kv cache is {}, expected f32, f16 or bf16", op, dtype_name(kv)));
  const int64_t Hkv = kv_cache.dim(2);
  if (kv_cache.dim(0) < plan.rows_needed)
    throw Error(
        fmt::format("{}: the batch needs {} cache rows, the cache has {}", op, plan.rows_needed, kv_cache.dim(0)));
  if (q.dtype != DType::f32 || out.dtype != DType::f32 || q_sb < H * D || o_sb < H * D ||
      static_cast<int64_t>(q.numel()) < (B - 1) * q_sb + H * D ||
      static_cast<int64_t>(out.numel()) < (B - 1) * o_sb + H * D)
    throw Error(fmt::format("{}: q {} (row stride {}) and out {} (row stride {}) must be f32 holding {} rows of {}x{}",
                            op, shape_str(q.shape), q_sb, shape_str(out.shape), o_sb, B, H, D));
  if (append) {
    const Tensor& pos = append->positions;
    if (q_sb < (H + 2 * Hkv) * D || static_cast<int64_t>(q.numel()) < (B - 1) * q_sb + (H + 2 * Hkv) * D)
      throw Error(fmt::format("{}: q {} (row stride {}) must hold {} rows of {} q, {} k and {} v heads of {}", op,
                              shape_str(q.shape), q_sb, B, H, Hkv, Hkv, D));
    if (!pos.defined() || pos.dtype != DType::i32 || pos.numel() != B)
      throw Error(fmt::format("{}: positions {} must be i32 [{}]", op, tensor_str(pos), B));
    if (D % 2 != 0 || !append->inv_freq.defined() || append->inv_freq.dtype != DType::f32 ||
        append->inv_freq.numel() != D / 2)
      throw Error(
          fmt::format("{}: inv_freq {} must be f32 [{}] (an even head dim)", op, tensor_str(append->inv_freq), D / 2));
  }
  const Tuning::SdpaDecode dt = rt.tuning().decode();
  Defines defs = flash_choice(rt, D, dt.bk).defines;
  add_kv_define(defs, kv);
  if (append) defs["KV_APPEND"] = "1";
  Tensor part = plan.part_floats > 0 ? rt.empty({plan.part_floats}, DType::f32, "sdpa batch partials") : q;
  const cl_int iH = static_cast<cl_int>(H), group = static_cast<cl_int>(H / Hkv);
  Kernel& k = rt.kernel("sdpa_decode.cl", "sdpa_decode_batch_f32", defs);
  const cl::NDRange global(kDecNT, plan.max_split, static_cast<size_t>(B * H)), local(kDecNT, 1, 1);
  const auto sb = static_cast<cl_long>(q_sb), ob = static_cast<cl_long>(o_sb), sh = static_cast<cl_long>(D);
  const auto kvn = static_cast<cl_int>(Hkv * D);
  if (append)
    rt.launch(k, global, local, q, sb, sh, kv_cache, kvn, out, ob, sh, plan.seq, iH, group,
              static_cast<cl_float>(scale), part, append->positions, append->inv_freq);
  else
    rt.launch(k, global, local, q, sb, sh, kv_cache, kvn, out, ob, sh, plan.seq, iH, group,
              static_cast<cl_float>(scale), part);
  if (plan.max_split > 1)
    rt.launch(rt.kernel("sdpa_decode.cl", "sdpa_combine_batch_f32", defs), cl::NDRange(round_up(D, 32), B * H),
              cl::NDRange(32, 1), part, plan.seq, out, static_cast<cl_long>(o_sb), static_cast<cl_long>(D), iH);
}

void sdpa(Runtime& rt, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* bias, Tensor& out, float scale,
          bool causal) {
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}})
    if (t->rank() != 4) throw Error(fmt::format("sdpa: {} must be [B,H,N,D], got {}", name, shape_str(t->shape)));
  SdpaParams p;
  p.scale = scale;
  p.causal = causal;
  if (bias) p.bias = AttnBias::dense(*bias);
  sdpa(rt, AttnView::bhnd(q), AttnView::bhnd(k), AttnView::bhnd(v), AttnView::bhnd(out), p);
}

}  // namespace dsocr::ops

// The storage of a decoder's KV cache (included by sdpa.cl and rope.cl; the host picks one with
// the same define for both): fp32, or 16 bits rounded to nearest even as written and widened
// exactly as read. kvtype is the element type; LOADKV(p, i) / LOADKV4(p) read one / four values
// as float; STOREKV(v, p, i) writes one.
//   (none)    f32
//   KV_F16    IEEE half: vload_half / vstore_half (core OpenCL: no cl_khr_fp16 needed)
//   KV_BF16   bfloat16 bits as ushort (NaN stored quiet with its sign)
#if defined(KV_F16) && defined(KV_BF16)
#error "KV_F16 and KV_BF16 are exclusive"
#endif
#if defined(KV_F16)
typedef half kvtype;
#define LOADKV(p, i) vload_half((i), (p))
#define LOADKV4(p) vload_half4(0, (p))
#define STOREKV(v, p, i) vstore_half((v), (i), (p))
#elif defined(KV_BF16)
typedef ushort kvtype;
inline ushort kv_to_bf16(float v) {
  uint b = as_uint(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (ushort)((b >> 16) | 0x40u);
  return (ushort)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
#define LOADKV(p, i) as_float((uint)(p)[(i)] << 16)
#define LOADKV4(p) as_float4(convert_uint4(vload4(0, (p))) << 16)
#define STOREKV(v, p, i) ((p)[(i)] = kv_to_bf16(v))
#else
typedef float kvtype;
#define LOADKV(p, i) ((p)[(i)])
#define LOADKV4(p) vload4(0, (p))
#define STOREKV(v, p, i) ((p)[(i)] = (v))
#endif

// Embedding lookup (row gather), fp32 output.
//   embedding_gather_f32: y[t, c] = table[ids[t], c]   table [V,C], ids [T] i32, y [T,C] f32
//                         An id outside [0, V) gives a row of zeros: the kernel never reads outside
//                         the table (the host validates ids before they are uploaded; this is the
//                         device-side guard).
// Index mapping: 2-D NDRange, dim 0 = column c (padded to the work-group width), dim 1 = token t;
//   consecutive work-items read consecutive columns of one row.
// Tunables (the table's storage; arithmetic and output stay fp32, core OpenCL, no extension):
//   WEIGHT_F16 (0/1, default 0): the table is fp16, read with vload_half.
//   WEIGHT_BF16 (0/1, default 0): the table is raw bfloat16 bits (ushort), widened exactly with
//   as_float(bits << 16). At most one of the two is 1.

#ifndef WEIGHT_F16
#define WEIGHT_F16 0
#endif
#ifndef WEIGHT_BF16
#define WEIGHT_BF16 0
#endif

#if WEIGHT_F16 && WEIGHT_BF16
#error "WEIGHT_F16 and WEIGHT_BF16 are exclusive"
#elif WEIGHT_F16
#define TABLE_T half
#define LOAD_TABLE(p, i) vload_half((i), (p))
#elif WEIGHT_BF16
#define TABLE_T ushort
#define LOAD_TABLE(p, i) as_float((uint)(p)[i] << 16)
#else
#define TABLE_T float
#define LOAD_TABLE(p, i) ((p)[i])
#endif

__kernel void embedding_gather_f32(__global const TABLE_T* table, __global const int* ids, __global float* y, int V,
                                   int C) {
  const int c = get_global_id(0);
  const int t = get_global_id(1);
  if (c >= C) return;
  const int id = ids[t];
  float v = 0.0f;
  if (id >= 0 && id < V) v = LOAD_TABLE(table, (size_t)id * C + c);
  y[(size_t)t * C + c] = v;
}

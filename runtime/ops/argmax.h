// Row-wise argmax for greedy decoding (kernels/argmax.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [R,N] f32; banned [>= nb] i32 or nullptr (nb == 0); idx [R] i32.
// idx[r] = the index of the maximum of row r, the first nb ids of `banned` (applied to every row)
// counting as -inf (the no-repeat n-gram ban). Ties give the lowest index (torch.argmax). NaN never
// wins (torch.argmax would return it); a row that is all NaN gives -1. Banned ids outside [0,N)
// are ignored. Throws Error on mismatched shapes or dtypes, nb < 0, or nb > 0 without `banned`.
// per_row: banned is [R, >= nb] i32, row r's ids at r * nb (a batch of sequences, each with its
// own n-gram ban; pad short lists with -1).
void argmax(Runtime& rt, const Tensor& x, const Tensor* banned, int nb, Tensor& idx, bool per_row = false);

}  // namespace dsocr::ops

// Warp-wide reductions by a fixed xor tree (offsets 16, 8, 4, 2, 1): every
// lane ends with the same bits, and the same inputs always give the same
// result, so the sums built on them are deterministic.

#pragma once

namespace faiss_flash {
namespace kernels {

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    }
    return v;
}

} // namespace kernels
} // namespace faiss_flash

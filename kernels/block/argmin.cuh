// The argmin order shared by every assignment kernel: lower score first,
// then lower centroid index (FAISS's tie rule), and its quad reduction.

#pragma once

#include <cstdint>

namespace faiss_flash {
namespace kernels {

/// (s, i) comes before (best_s, best_i).
__device__ __forceinline__ bool better(float s, int32_t i, float best_s, int32_t best_i) {
    return s < best_s || (s == best_s && i < best_i);
}

/// Reduces (score, index) over the 4 lanes of a quad (the lanes of an
/// mma/wgmma accumulator that share a row); every lane gets the result.
__device__ __forceinline__ void quad_argmin(float& score, int32_t& index) {
#pragma unroll
    for (int off = 1; off < 4; off *= 2) {
        const float os = __shfl_xor_sync(0xffffffff, score, off);
        const int32_t oi = __shfl_xor_sync(0xffffffff, index, off);
        if (better(os, oi, score, index)) {
            score = os;
            index = oi;
        }
    }
}

/** quad_argmin that also reduces each lane's second-best score: the second
 * smallest of two disjoint sets is the larger of their minima or the
 * smaller of their second minima.
 */
__device__ __forceinline__ void quad_argmin_second(float& score, int32_t& index, float& second) {
#pragma unroll
    for (int off = 1; off < 4; off *= 2) {
        const float os = __shfl_xor_sync(0xffffffff, score, off);
        const int32_t oi = __shfl_xor_sync(0xffffffff, index, off);
        const float osecond = __shfl_xor_sync(0xffffffff, second, off);
        second = fminf(fminf(second, osecond), fmaxf(score, os));
        if (better(os, oi, score, index)) {
            score = os;
            index = oi;
        }
    }
}

} // namespace kernels
} // namespace faiss_flash

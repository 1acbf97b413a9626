// The argmin epilogue of a wgmma accumulator: the scores of one centroid
// tile, folded into the running argmin of the rows a thread holds. Shared by
// the Hopper assignment kernels and the fold-overlap probe in benchmarks/.

#pragma once

#include <cmath>
#include <cstdint>

namespace faiss_flash {
namespace kernels {

/// Running argmin of the two rows a thread holds in one 64-row accumulator;
/// with margins also their second-best scores (unused registers otherwise).
struct RowBest {
    float score[2] = {INFINITY, INFINITY};
    int32_t index[2] = {0, 0};
    float second[2] = {INFINITY, INFINITY};
};

/// Row r (0..63) of a 64-row accumulator slab held in register half h.
__device__ __forceinline__ int slab_row(int h) {
    return ((threadIdx.x % 128) / 32) * 16 + (threadIdx.x % 32) / 4 + 8 * h;
}

/// How a product becomes a score (lower is better).
enum class Score {
    L2,           ///< bias - 2 * product (bias = ||c||^2)
    InnerProduct, ///< bias - product (bias = 0)
    Scaled,       ///< bias + multiplier * product: F16x3 operands, L2 or IP
};

/** Epilogue of one centroid tile: folds a 64 x (8 * kBlocks8) accumulator
 * whose first column is col0 into the thread's running argmin, with the
 * tile's score terms staged in shared memory (`slot`: 8 * kBlocks8 biases,
 * +inf past k, then as many multipliers for Score::Scaled). The tile's own
 * argmin first (column offsets are compile-time constants, so an index
 * costs one select), then one merge into the running argmin. Columns in
 * increasing order and strict '<' keep the lowest index on ties. 32-bit
 * columns: k < 2^31 (checked at launch). kMargin: the second-best score
 * too (two more instructions per score), for AssignArgs::margins.
 */
template <Score kScore, int kBlocks8, bool kMargin>
__device__ __forceinline__ void fold_tile(const float (&acc)[4 * kBlocks8], int32_t col0, const float* slot, RowBest& best) {
    const int lane_offset = 2 * int(threadIdx.x % 4);
    const float* lane_bias = slot + lane_offset;
    const float* lane_mult = slot + 8 * kBlocks8 + lane_offset;
    float tile_score[2] = {INFINITY, INFINITY};
    int32_t tile_col[2] = {0, 0};
    float tile_second[2] = {INFINITY, INFINITY};
#pragma unroll
    for (int j = 0; j < kBlocks8; j++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int c = 8 * j + e;
            const float cb = lane_bias[c];
            const float cm = kScore == Score::Scaled ? lane_mult[c] : 0.0f;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float dot = acc[4 * j + 2 * h + e];
                const float score = kScore == Score::L2             ? fmaf(-2.0f, dot, cb)
                                    : kScore == Score::InnerProduct ? cb - dot
                                                                    : fmaf(cm, dot, cb);
                if constexpr (kMargin) {
                    // The new second best is the larger of this score and
                    // the best before it, where that is smaller.
                    tile_second[h] = fminf(tile_second[h], fmaxf(score, tile_score[h]));
                }
                if (score < tile_score[h]) {
                    tile_score[h] = score;
                    tile_col[h] = c;
                }
            }
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if constexpr (kMargin) {
            best.second[h] = fminf(fminf(best.second[h], tile_second[h]), fmaxf(best.score[h], tile_score[h]));
        }
        if (tile_score[h] < best.score[h]) {
            best.score[h] = tile_score[h];
            best.index[h] = col0 + lane_offset + tile_col[h];
        }
    }
}

} // namespace kernels
} // namespace faiss_flash

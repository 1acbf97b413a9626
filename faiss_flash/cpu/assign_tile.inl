// The register micro-kernel of the CPU assignment, written once with GCC
// vector extensions and compiled once per instruction set (see
// assign_tile_avx2.cpp / assign_tile_generic.cpp, which define
// FAISS_FLASH_ASSIGN_BLOCK before including this file).
//
// Products accumulate one fused multiply-add per dimension, in dimension
// order, from zero: the same order as a BLAS micro-kernel, so the inner
// products match those of FAISS's sgemm path for d within one BLAS K-block.

#include <cmath>
#include <limits>

#include <faiss_flash/cpu/assign_tile.h>

namespace faiss_flash {
namespace cpu {
namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

constexpr int kP = AssignTilePolicy::kPanelPoints;
constexpr int kG = AssignTilePolicy::kGroupCentroids;

inline v8f splat(float s) {
    return v8f{s, s, s, s, s, s, s, s};
}

inline v8i splat_i(int32_t s) {
    return v8i{s, s, s, s, s, s, s, s};
}

/// Running argmin of one panel: lanes are points.
struct PanelBest {
    v8f score[2];
    v8i index[2];
};

/// Distance-to-score epilogue of one centroid for 8 points.
template <Metric M>
inline v8f score_of(v8f acc, v8f x_norm, float bias) {
    if (M == Metric::L2) {
        // FAISS: dis = x_norm + y_norm - 2 * ip; negative round-off -> 0.
        v8f dis = (x_norm + splat(bias)) - splat(2.0f) * acc;
        return dis < splat(0.0f) ? splat(0.0f) : dis;
    }
    // Inner product: the largest wins, so minimise its negation. bias is 0,
    // or +inf on padding.
    return splat(bias) - acc;
}

/// Mainloop + epilogue of one panel against groups [g0, g1).
template <Metric M>
inline void panel_against_groups(
        const float* __restrict panel,
        const PackedCentroids& C,
        int64_t g0,
        int64_t g1,
        const v8f x_norm[2],
        PanelBest& best) {
    const int64_t d = C.d;
    for (int64_t g = g0; g < g1; g++) {
        const float* __restrict cg = C.data.data() + g * d * kG;
        v8f acc[kG][2];
#pragma GCC unroll 6
        for (int c = 0; c < kG; c++) {
            acc[c][0] = splat(0.0f);
            acc[c][1] = splat(0.0f);
        }
        // Mainloop: 2 point loads + 6 broadcasts feed 12 FMAs per dimension.
        for (int64_t j = 0; j < d; j++) {
            const v8f p0 = *reinterpret_cast<const v8f*>(panel + j * kP);
            const v8f p1 = *reinterpret_cast<const v8f*>(panel + j * kP + 8);
#pragma GCC unroll 6
            for (int c = 0; c < kG; c++) {
                const v8f b = splat(cg[j * kG + c]);
                acc[c][0] += p0 * b;
                acc[c][1] += p1 * b;
            }
        }
        // Epilogue: strict '<' in increasing centroid order keeps the lowest
        // index on ties, as FAISS's top-1 handler.
#pragma GCC unroll 6
        for (int c = 0; c < kG; c++) {
            const float bias = C.bias[g * kG + c];
            const v8i idx = splat_i(int32_t(g * kG + c));
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const v8f s = score_of<M>(acc[c][h], x_norm[h], bias);
                const v8i win = s < best.score[h];
                best.score[h] = win ? s : best.score[h];
                best.index[h] = win ? idx : best.index[h];
            }
        }
    }
}

/// Transposes up to kP rows into a d×kP panel; missing rows are zeros.
inline void pack_panel(const float* x, int64_t rows, int64_t d, float* panel) {
    for (int64_t j = 0; j < d; j++) {
        for (int64_t l = 0; l < kP; l++) {
            panel[j * kP + l] = l < rows ? x[l * d + j] : 0.0f;
        }
    }
}

template <Metric M>
void assign_block_impl(
        const float* x,
        const float* x_norms,
        int64_t rows,
        const PackedCentroids& C,
        float* scratch,
        int64_t* labels,
        float* distances) {
    const int64_t d = C.d;
    const int64_t n_panels = (rows + kP - 1) / kP;
    for (int64_t p = 0; p < n_panels; p++) {
        const int64_t r0 = p * kP;
        pack_panel(x + r0 * d, std::min<int64_t>(kP, rows - r0), d,
                   scratch + p * d * kP);
    }

    constexpr int kMaxPanels = 64;
    PanelBest best[kMaxPanels];
    v8f x_norm[kMaxPanels][2];
    for (int64_t p = 0; p < n_panels; p++) {
        for (int h = 0; h < 2; h++) {
            best[p].score[h] = splat(std::numeric_limits<float>::infinity());
            best[p].index[h] = splat_i(0);
            for (int l = 0; l < 8; l++) {
                const int64_t r = p * kP + h * 8 + l;
                x_norm[p][h][l] =
                        (M == Metric::L2 && r < rows) ? x_norms[r] : 0.0f;
            }
        }
    }

    // Chunk loop outside the panel loop: a chunk stays in L2 while every
    // panel of the block streams it.
    const int64_t chunk_groups = std::max<int64_t>(
            1,
            AssignTilePolicy::kCentroidChunkBytes / (sizeof(float) * kG * d));
    for (int64_t g0 = 0; g0 < C.n_groups; g0 += chunk_groups) {
        const int64_t g1 = std::min(C.n_groups, g0 + chunk_groups);
        for (int64_t p = 0; p < n_panels; p++) {
            panel_against_groups<M>(
                    scratch + p * d * kP, C, g0, g1, x_norm[p], best[p]);
        }
    }

    for (int64_t r = 0; r < rows; r++) {
        const PanelBest& b = best[r / kP];
        const int h = (r % kP) / 8, l = r % 8;
        labels[r] = b.index[h][l];
        if (distances) {
            distances[r] = M == Metric::L2 ? b.score[h][l] : -b.score[h][l];
        }
    }
}

} // namespace

void FAISS_FLASH_ASSIGN_BLOCK(
        const float* x,
        const float* x_norms,
        int64_t rows,
        const PackedCentroids& centroids,
        Metric metric,
        float* scratch,
        int64_t* labels,
        float* distances) {
    if (metric == Metric::L2) {
        assign_block_impl<Metric::L2>(
                x, x_norms, rows, centroids, scratch, labels, distances);
    } else {
        assign_block_impl<Metric::InnerProduct>(
                x, x_norms, rows, centroids, scratch, labels, distances);
    }
}

} // namespace cpu
} // namespace faiss_flash

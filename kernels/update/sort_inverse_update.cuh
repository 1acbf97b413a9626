// Sort-inverse centroid update: a stable radix sort of (cluster, point)
// pairs makes every cluster a contiguous segment; warps reduce fixed-size
// chunks of the sorted order on chip and issue one add per (segment, dim)
// per chunk. The adds are 64-bit fixed-point integers, so their order does
// not matter: the result is bit-identical run to run (no float atomics),
// while the in-chunk sums stay fp32. Host-facing declarations only.

#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace faiss_flash {
namespace kernels {

/// Storage type of the points the update averages (the caller's data).
enum class PointType { F32, F16, BF16 };

/// Per-problem statistics of one update, written on the device.
struct UpdateStats {
    double centroid_shift;   ///< sum of squared moves of updated centroids
    double imbalance_factor; ///< k * sum(count^2) / n^2
    int64_t n_empty;         ///< updated clusters with zero weight
};

struct UpdateArgs {
    const void* x = nullptr; ///< B·N rows of ldx elements
    int64_t ldx = 0;
    PointType x_type = PointType::F32;
    const float* weights = nullptr; ///< B·N or nullptr (all 1)
    const int32_t* labels = nullptr; ///< B·N, in [0, k)
    int64_t batch = 1;
    int64_t n = 0;
    int64_t k = 0;
    int64_t d = 0;
    int64_t k_frozen = 0;
    /// Per-problem fixed-point scales (2^e) for coordinate sums and for
    /// weight sums, from fixed_point_scales().
    const double* coord_scale = nullptr;
    double weight_scale = 1;

    float* centroids = nullptr;       ///< B·K·d, in: current, out: updated
    float* cluster_weights = nullptr; ///< B·K out (FAISS's hassign)
    UpdateStats* stats = nullptr;     ///< B out
};

/// Scratch bytes needed by update_centroids for this shape.
size_t update_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d);

/** Chooses per-problem scales so that any sum of |x·w| over n points fits
 * in 62 bits: coord_scale[b] = 2^(61 - ceil(log2(n · max|x_b| · max w))).
 * Run once per bound point set. Returns the weight scale (host value).
 */
double fixed_point_scales(
        const void* x,
        int64_t ldx,
        PointType x_type,
        const float* weights,
        int64_t batch,
        int64_t n,
        int64_t d,
        double* coord_scale,
        void* workspace,
        cudaStream_t stream);

/// The update (see file comment); workspace of update_workspace_bytes().
void update_centroids(const UpdateArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

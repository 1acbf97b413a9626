// Sort-inverse centroid update: a stable radix sort of (cluster, point)
// pairs makes every cluster a contiguous segment of the sorted order. Each
// segment is cut into fixed chunks of at most kChunkRows points (an empty
// one into one chunk of none); one warp sums a chunk on chip (fp32, in
// point order). The only chunk of its cluster finishes the cluster there
// (mean, weight, shift); the chunks of a larger cluster write partial rows
// that a warp or block per cluster then adds in chunk order (fp64). Shifts
// are per-thread sums of squared moves in dimension order, then a fixed
// shuffle tree. No float atomics and no order that depends on scheduling
// (an integer atomic lists the larger clusters, but each is computed the
// same whichever team takes it): the result is bit-identical run to run.
// Host-facing declarations only.

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
    float* centroids = nullptr;       ///< B·K·d, in: current, out: updated
    float* cluster_weights = nullptr; ///< B·K out (FAISS's hassign)
    UpdateStats* stats = nullptr;     ///< B out
};

/// Scratch bytes needed by update_centroids for this shape.
size_t update_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d);

/// The update (see file comment); workspace of update_workspace_bytes().
void update_centroids(const UpdateArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

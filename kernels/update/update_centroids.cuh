// The centroid update of a Lloyd step on the GPU: new centroids (weighted
// means of their points; frozen ones untouched), cluster weights and
// per-problem statistics, bit-identical run to run. Two strategies compute
// the same contract: sort-inverse (sort_inverse_update.cuh: a radix sort
// groups each cluster's points, any k, any points) and on-chip
// (onchip_update.cuh: per-block sums of every cluster as one-hot products
// on tensor cores, held in registers, no global sort; 16-bit unweighted
// points whose k·d fits). Host-facing declarations.

#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "../util/objective_partials.h"

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

/// How the update groups the points by cluster. Auto takes OnChip where it
/// fits (onchip_update.cuh), SortInverse elsewhere.
enum class UpdateStrategy { Auto, SortInverse, OnChip };

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
    UpdateStrategy strategy = UpdateStrategy::Auto;
    /// The assignment's objective, added up by the statistics kernel
    /// (values nullptr: none, objectives untouched).
    ObjectivePartials objective;
};

/// The strategy update_centroids runs for args on the current GPU (never
/// Auto); throws where OnChip is forced on a shape that does not fit.
UpdateStrategy update_strategy(const UpdateArgs& args);

/// Scratch bytes update_centroids needs for args (its shape, point type
/// and strategy; the pointers are not read) on the current GPU.
size_t update_workspace_bytes(const UpdateArgs& args);

/// The update; workspace of update_workspace_bytes(args), on the same GPU.
void update_centroids(const UpdateArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

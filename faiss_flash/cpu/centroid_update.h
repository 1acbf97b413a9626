// CPU centroid update by sort-inverse: a stable counting sort of the labels
// lists each cluster's points in index order, then each cluster is reduced
// by one thread. No atomics, and every centroid is summed in point order
// whatever the thread count: the result is bit-identical to FAISS's
// compute_centroids for the same assignment, and run to run.

#pragma once

#include <cstdint>

namespace faiss_flash {
namespace cpu {

/// Output of one update for one problem.
struct UpdateStats {
    double centroid_shift = 0; ///< sum of squared moves of updated centroids
    int64_t n_empty = 0;       ///< updated clusters with zero weight
};

/** Replaces centroids [k_frozen, k) by the (weighted) means of their points.
 *
 * @param x                row-major n×d points
 * @param weights          n weights, or nullptr for all 1
 * @param labels           n labels in [0, k)
 * @param centroids        k×d, in: current, out: updated (empty -> zeros)
 * @param cluster_weights  k, out: total weight per cluster (FAISS's hassign)
 * @param counts           k, out: number of points per cluster
 */
UpdateStats update_centroids(
        const float* x,
        const float* weights,
        int64_t n,
        int64_t d,
        int64_t k,
        int64_t k_frozen,
        const int64_t* labels,
        int num_threads,
        float* centroids,
        float* cluster_weights,
        int64_t* counts);

} // namespace cpu
} // namespace faiss_flash

// FAISS 1.7.3's k-means rules that are not arithmetic of the heavy step:
// initial centroid choice, empty-cluster splitting, centroid post-processing
// and the imbalance statistic. Each is re-implemented to give the same
// numbers as faiss::Clustering for the same seed, so that FlashClustering is
// a drop-in replacement; the tests compare against FAISS itself.

#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace faiss_flash {

/** The data rows FAISS picks as initial centroids: centroid i (from the
 * first one not provided by the caller) is row perm[i] of
 * rand_perm(n, seed + 1 + redo * 15486557).
 */
std::vector<int> init_centroid_rows(int64_t n, int64_t seed, int redo);

/** Splits empty clusters as FAISS's split_clusters: for each non-frozen
 * empty cluster, pick a cluster j with probability (w_j - 1) / (n - k) using
 * RandomGenerator(1234), copy it and move both copies apart by the relative
 * perturbation 1 ± 1/1024 (alternating signs over dimensions). The cluster
 * weights are updated as an even split.
 *
 * @return number of splits (FAISS's nsplit)
 */
int split_empty_clusters(
        int64_t d,
        int64_t k,
        int64_t n,
        int64_t k_frozen,
        float* cluster_weights,
        float* centroids);

/// FAISS's post_process_centroids: L2 renormalisation, then roundf.
void post_process_centroids(
        int64_t d,
        int64_t k,
        bool spherical,
        bool round_to_int,
        float* centroids);

/// k * sum(count^2) / (sum count)^2, FAISS's imbalance_factor.
double imbalance_factor(int64_t k, const int64_t* counts);

} // namespace faiss_flash

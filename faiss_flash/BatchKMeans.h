// Batched k-means: B independent (N, D) problems in one call, for AI
// pipelines (token clustering, KV-cache compression, PQ sub-quantizers).
// Host-pointer API; the GPU device-pointer API is in faiss_flash/gpu/.

#pragma once

#include <cstdint>
#include <vector>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {

struct BatchKMeansResult {
    std::vector<float> centroids; ///< B×K×D
    std::vector<int64_t> labels;  ///< B×N, nearest final centroid
    std::vector<float> distances; ///< B×N, to that centroid (L2²; IP: <x,c>)
    std::vector<double> obj;      ///< B, objective of the last iteration
    /// per problem, FAISS's per-iteration statistics
    std::vector<std::vector<faiss::ClusteringIterationStats>> iteration_stats;
};

/** Clusters B problems of n points (row-major B×N×D) into k centroids each.
 *
 * Lloyd's iterations with FAISS's rules (init by rand_perm with params.seed,
 * the same draw in every problem; empty-cluster splits; nredo; spherical;
 * int_centroids; params.tol early stop), but no subsampling: all n points of
 * each problem are clustered. init_centroids (B×K×D) replaces the random
 * draw when given.
 */
BatchKMeansResult batch_kmeans(
        const float* x,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t k,
        const FlashClusteringParameters& params = FlashClusteringParameters(),
        Metric metric = Metric::L2,
        const float* init_centroids = nullptr);

} // namespace faiss_flash

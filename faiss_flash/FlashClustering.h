// faiss_flash::FlashClustering: a drop-in faiss::Clustering.
//
// Same parameters (it *is* a faiss::ClusteringParameters), same semantics
// and the same initial centroids for the same seed as FAISS 1.7.3's
// Clustering::train, but the iterations run in faiss_flash's fused engine
// instead of through index.search + compute_centroids. The index passed to
// train() is used as FAISS uses it for output: on return it holds the
// centroids (reset + add), and its metric (L2 or inner product) picks the
// assignment. Indexes with another metric fall back to faiss::Clustering.

#pragma once

#include <faiss/Clustering.h>

#include <faiss_flash/FlashParameters.h>

namespace faiss_flash {

/// Both parameter sets in one struct, for passing around.
struct FlashClusteringParameters : faiss::ClusteringParameters,
                                   FlashParameters {};

struct FlashClustering : faiss::Clustering, FlashParameters {
    /// d > 0, k > 0, else throws.
    FlashClustering(int d, int k);
    FlashClustering(int d, int k, const faiss::ClusteringParameters& cp);
    FlashClustering(int d, int k, const FlashClusteringParameters& params);

    /** Runs k-means with FAISS's semantics (see faiss::Clustering::train).
     *
     * Differences by design, documented: the index is not searched during
     * the iterations, so it is trained (if untrained, or with update_index)
     * and filled once with the final centroids rather than at every
     * iteration.
     */
    void train(
            idx_t n,
            const float* x,
            faiss::Index& index,
            const float* weights = nullptr) override;

    /// Name of the backend that ran the last train() ("cpu", "cuda").
    const char* last_backend = "";
};

/** faiss::kmeans_clustering through FlashClustering.
 * @return final quantization error
 */
float kmeans_clustering(
        size_t d,
        size_t n,
        size_t k,
        const float* x,
        float* centroids,
        const FlashParameters& params = FlashParameters());

} // namespace faiss_flash

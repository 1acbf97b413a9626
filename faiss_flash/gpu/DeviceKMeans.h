// Batched k-means on data already on the GPU: the entry point for AI
// pipelines that hold (B, N, D) tensors in device memory (PyTorch, CuPy,
// ...). Nothing is copied to the host except per-iteration statistics;
// all work is ordered on the caller's stream.

#pragma once

#include <cstdint>
#include <vector>

#include <cuda_runtime_api.h>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/engine/LloydBackend.h>

#include <kernels/update/update_centroids.cuh>

namespace faiss_flash {
namespace gpu {

using DeviceDType = kernels::PointType;

struct DeviceKMeansResult {
    std::vector<double> obj; ///< B, objective of the last iteration
    std::vector<std::vector<faiss::ClusteringIterationStats>> iteration_stats;
};

/** Clusters B problems of n points (device memory, B·N rows of ldx
 * elements of type dtype, ldx >= d) into k centroids each, with the rules of
 * batch_kmeans (FAISS init and splits, no subsampling).
 *
 * @param centroids  device, B·K·d fp32: output; also the initial centroids
 *                   when centroids_are_init
 * @param labels     device, B·N int32 out (nearest final centroid), or null
 * @param distances  device, B·N fp32 out, or null
 */
DeviceKMeansResult device_batch_kmeans(
        const void* x,
        DeviceDType dtype,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t ldx,
        int64_t k,
        const FlashClusteringParameters& params,
        cudaStream_t stream,
        float* centroids,
        bool centroids_are_init,
        int32_t* labels,
        float* distances,
        Metric metric = Metric::L2);

} // namespace gpu
} // namespace faiss_flash

// The C++ side of faiss_flash's numpy-level Python entry points (module
// faiss_flash.numpy_api). They take and return plain arrays only, never
// FAISS objects, so they work whatever faiss Python module is installed,
// or none. Arrays are caller-allocated (numpy), sizes as documented.

#pragma once

#include <cstdint>
#include <vector>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashClustering.h>

namespace faiss_flash {
namespace python {

/** faiss.Kmeans.train's C++ half: a FlashClustering(d, k, params) trained
 * on the n×d rows x into a flat index of faiss.Kmeans's metric (inner
 * product when params.spherical, else L2).
 *
 * @param weights         n weights, or null
 * @param init_centroids  n_init×d initial centroids (n_init <= k), or null
 * @param centroids       out: k×d final centroids
 * @return the per-iteration statistics (FlashClustering::iteration_stats)
 */
std::vector<faiss::ClusteringIterationStats> train_kmeans(
        const FlashClusteringParameters& params,
        int64_t d,
        int64_t k,
        int64_t n,
        const float* x,
        const float* weights,
        int64_t n_init,
        const float* init_centroids,
        float* centroids);

/** faiss.Kmeans.assign's C++ half: for each of the n×d rows x, the nearest
 * of the k×d centroids by an exact faiss::IndexFlat search (L2, or inner
 * product when `inner_product`). Ties go to the lowest index, as FAISS.
 *
 * @param distances  out: n distances (L2²) or inner products
 * @param labels     out: n centroid indices
 */
void assign_nearest(
        int64_t d,
        int64_t k,
        const float* centroids,
        bool inner_product,
        int64_t n,
        const float* x,
        float* distances,
        int64_t* labels);

/** faiss_flash::batch_kmeans into caller-owned arrays.
 *
 * @param x               batch×n×d points
 * @param init_centroids  batch×k×d initial centroids, or null
 * @param labels          out: batch×n labels
 * @param centroids       out: batch×k×d centroids
 * @param obj             out: batch objectives of the last iteration
 */
void batch_kmeans_into(
        const FlashClusteringParameters& params,
        bool inner_product,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t k,
        const float* x,
        const float* init_centroids,
        int64_t* labels,
        float* centroids,
        double* obj);

/** faiss_flash::gpu::device_batch_kmeans on GPU arrays (PyTorch tensors,
 * CuPy arrays, anything with __cuda_array_interface__): no copy to the host.
 * Pointers are device addresses as integers; the work is ordered on
 * `stream` (a cudaStream_t as an integer, 0 = legacy default stream).
 *
 * @param dtype           0 = float32, 1 = float16, 2 = bfloat16
 * @param x               batch·n rows of ldx elements (ldx >= d)
 * @param centroids       out: batch×k×d float32 (also the initial centroids
 *                        when centroids_are_init)
 * @param labels          out: batch×n int32, or 0
 * @param obj             out: batch objectives of the last iteration
 * Throws when this build has no CUDA backend.
 */
void batch_kmeans_device(
        const FlashClusteringParameters& params,
        bool inner_product,
        int dtype,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t ldx,
        int64_t k,
        uint64_t x,
        uint64_t stream,
        uint64_t centroids,
        bool centroids_are_init,
        uint64_t labels,
        double* obj);

/** faiss_flash::train_index on an index given in FAISS's serialized form
 * (faiss.serialize_index / faiss::write_index): read with faiss::read_index,
 * trained on the n×d rows x, written back. This crosses no object between
 * libraries, so it works with a faiss Python module of another version
 * that shares the on-disk format.
 *
 * @return the trained index, serialized
 */
std::vector<uint8_t> train_serialized_index(
        const uint8_t* index_bytes,
        int64_t n_bytes,
        const FlashParameters& params,
        int64_t n,
        int64_t d,
        const float* x);

} // namespace python
} // namespace faiss_flash

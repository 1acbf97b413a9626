#include "numpy_api.h"

#include <faiss/impl/FaissAssert.h>

#ifdef FAISS_FLASH_WITH_CUDA
#include <faiss_flash/gpu/DeviceKMeans.h>
#endif

#include <algorithm>

#include <faiss/IndexFlat.h>

#include <faiss_flash/BatchKMeans.h>

namespace faiss_flash {
namespace python {

std::vector<faiss::ClusteringIterationStats> train_kmeans(
        const FlashClusteringParameters& params,
        int64_t d,
        int64_t k,
        int64_t n,
        const float* x,
        const float* weights,
        int64_t n_init,
        const float* init_centroids,
        float* centroids) {
    FlashClustering clus(d, k, params);
    if (init_centroids) {
        clus.centroids.assign(init_centroids, init_centroids + n_init * d);
    }
    faiss::IndexFlat index(
            d,
            params.spherical ? faiss::METRIC_INNER_PRODUCT
                             : faiss::METRIC_L2);
    clus.train(n, x, index, weights);
    std::copy(clus.centroids.begin(), clus.centroids.end(), centroids);
    return clus.iteration_stats;
}

void assign_nearest(
        int64_t d,
        int64_t k,
        const float* centroids,
        bool inner_product,
        int64_t n,
        const float* x,
        float* distances,
        int64_t* labels) {
    faiss::IndexFlat index(
            d, inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
    index.add(k, centroids);
    index.search(n, x, 1, distances, labels);
}

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
        double* obj) {
    BatchKMeansResult r = batch_kmeans(
            x,
            batch,
            n,
            d,
            k,
            params,
            inner_product ? Metric::InnerProduct : Metric::L2,
            init_centroids);
    std::copy(r.labels.begin(), r.labels.end(), labels);
    std::copy(r.centroids.begin(), r.centroids.end(), centroids);
    std::copy(r.obj.begin(), r.obj.end(), obj);
}

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
        double* obj) {
#ifdef FAISS_FLASH_WITH_CUDA
    FAISS_THROW_IF_NOT_FMT(dtype >= 0 && dtype <= 2, "unknown dtype code %d", dtype);
    const gpu::DeviceDType types[] = {gpu::DeviceDType::F32, gpu::DeviceDType::F16, gpu::DeviceDType::BF16};
    gpu::DeviceKMeansResult r = gpu::device_batch_kmeans(
            reinterpret_cast<const void*>(x), types[dtype], batch, n, d, ldx, k, params,
            reinterpret_cast<cudaStream_t>(stream), reinterpret_cast<float*>(centroids), centroids_are_init,
            reinterpret_cast<int32_t*>(labels), nullptr,
            inner_product ? Metric::InnerProduct : Metric::L2);
    std::copy(r.obj.begin(), r.obj.end(), obj);
#else
    FAISS_THROW_MSG(
            "GPU arrays need the CUDA backend, and this build of faiss_flash "
            "has none (FAISS_FLASH_ENABLE_GPU=OFF)");
#endif
}

} // namespace python
} // namespace faiss_flash

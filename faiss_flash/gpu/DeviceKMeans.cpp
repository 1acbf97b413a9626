#include <faiss_flash/gpu/DeviceKMeans.h>

#include <faiss_flash/engine/LloydDriver.h>
#include <faiss_flash/engine/input_checks.h>
#include <faiss_flash/gpu/CudaBackend.h>

#include <kernels/util/operands.cuh>

namespace faiss_flash {
namespace gpu {

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
        Metric metric) {
    FAISS_THROW_IF_NOT_FMT(batch >= 1, "batch=%ld must be >= 1", long(batch));
    check_problem_size(n, d, k);
    FAISS_THROW_IF_NOT_MSG(x && centroids, "device_batch_kmeans: null device pointer");
    FlashParameters fp = params;
    fp.backend = BackendKind::CUDA;
    CudaBackend backend(fp, stream);
    DeviceScope scope(fp.device);
    FAISS_THROW_IF_NOT_MSG(
            kernels::all_finite(x, ldx, dtype, batch * n, d, stream),
            "input contains NaN's or Inf's");

    LloydShape shape{batch, n, d, k, metric};
    backend.bind_device_points(shape, x, dtype, ldx, nullptr);
    const size_t centroid_bytes = sizeof(float) * batch * k * d;
    if (centroids_are_init) {
        FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                backend.device_centroids(), centroids, centroid_bytes, cudaMemcpyDeviceToDevice, stream));
    }

    DeviceKMeansResult r;
    r.obj = run_lloyd(backend, shape, LloydSchedule::from(params, params),
                      centroids_are_init ? k : 0, r.iteration_stats);
    FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
            centroids, backend.device_centroids(), centroid_bytes, cudaMemcpyDeviceToDevice, stream));
    if (labels || distances) {
        const float* dist_dev = nullptr;
        const int32_t* labels_dev = backend.assign_on_device(&dist_dev);
        const size_t rows = size_t(batch) * n;
        if (labels) {
            FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                    labels, labels_dev, sizeof(int32_t) * rows, cudaMemcpyDeviceToDevice, stream));
        }
        if (distances) {
            FAISS_FLASH_CUDA_CHECK(cudaMemcpyAsync(
                    distances, dist_dev, sizeof(float) * rows, cudaMemcpyDeviceToDevice, stream));
        }
    }
    // The backend's buffers are freed on return: finish using them first.
    FAISS_FLASH_CUDA_CHECK(cudaStreamSynchronize(stream));
    return r;
}

} // namespace gpu
} // namespace faiss_flash

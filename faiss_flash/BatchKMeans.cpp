#include <faiss_flash/BatchKMeans.h>

#include <memory>

#include <faiss/impl/FaissAssert.h>

#include <faiss_flash/engine/LloydDriver.h>
#include <faiss_flash/engine/backend_factory.h>
#include <faiss_flash/engine/input_checks.h>

namespace faiss_flash {

BatchKMeansResult batch_kmeans(
        const float* x,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t k,
        const FlashClusteringParameters& params,
        Metric metric,
        const float* init_centroids) {
    FAISS_THROW_IF_NOT_FMT(batch >= 1, "batch=%ld must be >= 1", long(batch));
    check_problem_size(n, d, k);
    check_finite(x, size_t(batch) * n * d);
    if (init_centroids) {
        check_finite(init_centroids, size_t(batch) * k * d);
    }

    LloydShape shape{batch, n, d, k, metric};
    std::unique_ptr<LloydBackend> backend = make_backend(params);
    backend->bind_points(shape, x, nullptr);
    if (init_centroids) {
        backend->set_centroids(init_centroids);
    }

    BatchKMeansResult r;
    r.obj = run_lloyd(*backend, shape, LloydSchedule::from(params, params),
                      init_centroids ? k : 0, r.iteration_stats);
    r.centroids.resize(batch * k * d);
    backend->get_centroids(r.centroids.data());
    r.labels.resize(batch * n);
    r.distances.resize(batch * n);
    backend->assign(r.labels.data(), r.distances.data());
    return r;
}

} // namespace faiss_flash

#include <faiss_flash/FlashClustering.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/random.h>
#include <faiss/utils/utils.h>

#include <faiss_flash/engine/LloydDriver.h>
#include <faiss_flash/engine/backend_factory.h>
#include <faiss_flash/engine/faiss_metric.h>
#include <faiss_flash/engine/input_checks.h>

namespace faiss_flash {

namespace {

void check_shape(int d, int k) {
    check_problem_size(k, d, k);
}

/// FAISS's subsample_training_set: the first k * max_points_per_centroid
/// rows of rand_perm(n, seed).
int64_t subsample(
        const faiss::Clustering& clus,
        int64_t n,
        const float* x,
        const float* weights,
        std::vector<float>& x_sub,
        std::vector<float>& weights_sub) {
    const int64_t n_sub = int64_t(clus.k) * clus.max_points_per_centroid;
    if (clus.verbose) {
        printf("Sampling a subset of %zd / %" PRId64 " for training\n",
               clus.k * clus.max_points_per_centroid,
               n);
    }
    std::vector<int> perm(n);
    faiss::rand_perm(perm.data(), n, clus.seed);
    x_sub.resize(n_sub * clus.d);
    for (int64_t i = 0; i < n_sub; i++) {
        std::memcpy(
                x_sub.data() + i * clus.d,
                x + int64_t(perm[i]) * clus.d,
                sizeof(float) * clus.d);
    }
    if (weights) {
        weights_sub.resize(n_sub);
        for (int64_t i = 0; i < n_sub; i++) {
            weights_sub[i] = weights[perm[i]];
        }
    }
    return n_sub;
}

} // namespace

FlashClustering::FlashClustering(int d, int k) : faiss::Clustering(d, k) {
    check_shape(d, k);
}

FlashClustering::FlashClustering(
        int d,
        int k,
        const faiss::ClusteringParameters& cp)
        : faiss::Clustering(d, k, cp) {
    check_shape(d, k);
}

FlashClustering::FlashClustering(
        int d,
        int k,
        const FlashClusteringParameters& params)
        : faiss::Clustering(d, k, params), FlashParameters(params) {
    check_shape(d, k);
}

void FlashClustering::train(
        idx_t nx,
        const float* x_in,
        faiss::Index& index,
        const float* weights) {
    // Argument checks in FAISS's order and words.
    check_problem_size(nx, d, k);
    FAISS_THROW_IF_NOT_FMT(
            index.d == idx_t(d),
            "Index dimension %d not the same as data dimension %d",
            int(index.d),
            int(d));

    if (!has_fused_kernel(index.metric_type)) {
        // Only L2 and IP have fused kernels; other metrics keep FAISS's path.
        last_backend = "faiss";
        faiss::Clustering::train(nx, x_in, index, weights);
        return;
    }

    double t0 = faiss::getmillisecs();
    check_finite(x_in, size_t(nx) * d);

    const float* x = x_in;
    std::vector<float> x_sub, weights_sub;
    if (nx > idx_t(k) * max_points_per_centroid) {
        nx = subsample(*this, nx, x_in, weights, x_sub, weights_sub);
        x = x_sub.data();
        weights = weights ? weights_sub.data() : nullptr;
    } else if (nx < idx_t(k) * min_points_per_centroid) {
        fprintf(stderr,
                "WARNING clustering %" PRId64
                " points to %zd centroids: "
                "please provide at least %" PRId64 " training points\n",
                nx,
                k,
                idx_t(k) * min_points_per_centroid);
    }

    if (nx == idx_t(k)) {
        // FAISS's corner case: the centroids are the input rows (x_in, as
        // FAISS copies them, even after subsampling).
        if (verbose) {
            printf("Number of training points (%" PRId64
                   ") same as number of "
                   "clusters, just copying\n",
                   nx);
        }
        centroids.assign(x_in, x_in + d * k);
        iteration_stats.push_back(
                faiss::ClusteringIterationStats{0.0, 0.0, 0.0, 1.0, 0});
        index.reset();
        index.add(k, centroids.data());
        return;
    }

    if (verbose) {
        printf("Clustering %" PRId64
               " points in %zdD to %zd clusters, "
               "redo %d times, %d iterations\n",
               nx,
               d,
               k,
               nredo,
               niter);
    }

    FAISS_THROW_IF_NOT_MSG(
            centroids.size() % d == 0,
            "size of provided input centroids not a multiple of dimension");
    const size_t n_input_centroids = centroids.size() / d;
    if (verbose && n_input_centroids > 0) {
        printf("  Using %zd centroids provided as input (%sfrozen)\n",
               n_input_centroids,
               frozen_centroids ? "" : "not ");
    }
    if (verbose) {
        printf("  Preprocessing in %.2f s\n", (faiss::getmillisecs() - t0) / 1000.);
    }

    LloydShape shape;
    shape.n = nx;
    shape.d = d;
    shape.k = k;
    shape.metric = engine_metric(index.metric_type);

    std::unique_ptr<LloydBackend> backend = make_backend(*this);
    last_backend = backend->name();
    backend->bind_points(shape, x, weights);
    centroids.resize(d * k);
    const int64_t n_provided = std::min<size_t>(n_input_centroids, k);
    if (n_provided > 0) {
        backend->set_centroids(centroids.data());
    }

    std::vector<std::vector<faiss::ClusteringIterationStats>> stats{
            iteration_stats};
    run_lloyd(*backend, shape, LloydSchedule::from(*this, *this), n_provided,
              stats);
    iteration_stats = stats[0];
    backend->get_centroids(centroids.data());

    index.reset();
    if (update_index || !index.is_trained) {
        index.train(k, centroids.data());
    }
    index.add(k, centroids.data());
}

float kmeans_clustering(
        size_t d,
        size_t n,
        size_t k,
        const float* x,
        float* centroids,
        const FlashParameters& params) {
    FlashClusteringParameters cp;
    static_cast<FlashParameters&>(cp) = params;
    FlashClustering clus(d, k, cp);
    clus.verbose = d * n * k > (size_t(1) << 30);
    faiss::IndexFlatL2 index(d);
    clus.train(n, x, index);
    std::memcpy(centroids, clus.centroids.data(), sizeof(*centroids) * d * k);
    return clus.iteration_stats.back().obj;
}

} // namespace faiss_flash

// batch_kmeans: B problems in one call give what B separate FlashClustering
// runs give, plus labels that are the nearest final centroid.

#include <gtest/gtest.h>

#include <faiss/impl/FaissException.h>

#include <faiss_flash/BatchKMeans.h>

#include "faiss_compare.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

FlashClusteringParameters cpu_params(int niter) {
    FlashClusteringParameters p;
    p.niter = niter;
    p.backend = BackendKind::CPU;
    p.min_points_per_centroid = 1;
    return p;
}

TEST(BatchKMeans, EachProblemEqualsItsOwnFlashClustering) {
    const int64_t B = 4, n = 1500, d = 17, k = 23;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    std::vector<float> x = gaussian_mixture(B * n, d, 12, seed);
    BatchKMeansResult r = batch_kmeans(x.data(), B, n, d, k, cpu_params(9));
    ASSERT_EQ(r.centroids.size(), size_t(B * k * d));
    for (int64_t b = 0; b < B; b++) {
        FlashClustering single(d, k, cpu_params(9));
        ClusteringRun run =
                run_clustering(single, n, x.data() + b * n * d, false);
        EXPECT_EQ(std::vector<float>(r.centroids.begin() + b * k * d,
                                     r.centroids.begin() + (b + 1) * k * d),
                  run.centroids)
                << "problem " << b;
        EXPECT_EQ(float(r.obj[b]), run.stats.back().obj);
        // Labels: the fp64 nearest final centroid, up to near-ties.
        Reference ref = assign64(x.data() + b * n * d, n,
                                 r.centroids.data() + b * k * d, k, d,
                                 Metric::L2);
        int64_t differ = 0;
        for (int64_t i = 0; i < n; i++) {
            differ += r.labels[b * n + i] != ref.label[i];
        }
        EXPECT_LE(differ, 2);
    }
}

TEST(BatchKMeans, InitCentroidsAndInnerProduct) {
    const int64_t B = 2, n = 800, d = 5, k = 7;
    std::vector<float> x = randn(B * n * d, fresh_seed());
    std::vector<float> init = randn(B * k * d, fresh_seed());
    FlashClusteringParameters p = cpu_params(0);
    BatchKMeansResult r = batch_kmeans(x.data(), B, n, d, k, p,
                                       Metric::InnerProduct, init.data());
    EXPECT_EQ(r.centroids, init); // no iteration: the init comes back
    for (int64_t i = 0; i < B * n; i++) {
        ASSERT_GE(r.labels[i], 0);
        ASSERT_LT(r.labels[i], k);
    }
}

TEST(BatchKMeans, TolStopsEarly) {
    const int64_t n = 4000, d = 8, k = 10;
    std::vector<float> x = gaussian_mixture(n, d, 10, fresh_seed());
    FlashClusteringParameters p = cpu_params(100);
    p.tol = 1e-3f;
    BatchKMeansResult r = batch_kmeans(x.data(), 1, n, d, k, p);
    EXPECT_LT(r.iteration_stats[0].size(), 100u);
}

TEST(BatchKMeans, BadInput) {
    std::vector<float> x = randn(100, 1);
    EXPECT_THROW(batch_kmeans(x.data(), 0, 10, 10, 2), faiss::FaissException);
    EXPECT_THROW(batch_kmeans(x.data(), 1, 10, 10, 11), faiss::FaissException);
    x[50] = NAN;
    EXPECT_THROW(batch_kmeans(x.data(), 1, 10, 10, 2), faiss::FaissException);
}

} // namespace

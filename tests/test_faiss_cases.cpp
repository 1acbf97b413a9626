// FAISS's own clustering test cases (faiss/tests/test_clustering.py and
// TestClustering*), re-pointed at FlashClustering.

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "faiss_compare.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

FlashClusteringParameters cpu_params(int niter = 25) {
    FlashClusteringParameters p;
    p.niter = niter;
    p.backend = BackendKind::CPU;
    return p;
}

double final_obj(FlashClustering& c, int64_t n, const float* x, bool ip = false,
                 const float* w = nullptr) {
    return run_clustering(c, n, x, ip, w, c.centroids).stats.back().obj;
}

TEST(FaissCases, ObjectiveDecreases) {
    const int d = 32, k = 50;
    const int64_t n = 5000;
    std::vector<float> x = randn(n * d, fresh_seed());
    FlashClustering c(d, k, cpu_params(20));
    auto stats = run_clustering(c, n, x.data(), false).stats;
    ASSERT_EQ(stats.size(), 20u);
    for (size_t i = 1; i < stats.size(); i++) {
        EXPECT_LE(stats[i].obj, stats[i - 1].obj * (1 + 1e-6)) << i;
    }
    EXPECT_LT(stats.back().obj, stats.front().obj);
}

TEST(FaissCases, IntCentroidsAreIntegers) {
    const int d = 10, k = 20;
    const int64_t n = 4000;
    std::vector<float> x = randn(n * d, fresh_seed());
    for (float& v : x) {
        v *= 30;
    }
    FlashClusteringParameters p = cpu_params(10);
    p.int_centroids = true;
    FlashClustering c(d, k, p);
    run_clustering(c, n, x.data(), false);
    for (float v : c.centroids) {
        EXPECT_EQ(v, std::round(v));
    }
}

TEST(FaissCases, FiveDistinctPointsIntoTenCentroids) {
    const int d = 4, k = 10;
    const int64_t n = 100;
    std::vector<float> base = randn(5 * d, fresh_seed());
    std::vector<float> x(n * d);
    for (int64_t i = 0; i < n; i++) {
        std::copy(base.begin() + (i % 5) * d, base.begin() + (i % 5 + 1) * d,
                  x.begin() + i * d);
    }
    FlashClusteringParameters p = cpu_params(10);
    p.min_points_per_centroid = 1;
    FlashClustering c(d, k, p);
    auto run = run_clustering(c, n, x.data(), false);
    EXPECT_EQ(run.index_ntotal, k);
    for (float v : run.centroids) {
        EXPECT_TRUE(std::isfinite(v));
    }
}

TEST(FaissCases, NEqualsKCopiesThePoints) {
    const int d = 7, k = 33;
    std::vector<float> x = randn(k * d, fresh_seed());
    FlashClustering c(d, k, cpu_params());
    auto run = run_clustering(c, k, x.data(), false);
    EXPECT_EQ(run.centroids, x);
    ASSERT_EQ(run.stats.size(), 1u);
    EXPECT_EQ(run.stats[0].imbalance_factor, 1.0);
    EXPECT_EQ(run.index_ntotal, k);
}

TEST(FaissCases, WeightsPullCentroids) {
    // Two clouds, one cluster: the centroid goes to the heavy cloud.
    const int d = 2, k = 1;
    const int64_t n = 1000;
    std::vector<float> x = randn(n * d, fresh_seed());
    std::vector<float> w(n);
    for (int64_t i = 0; i < n; i++) {
        x[i * d] += i < n / 2 ? -10 : 10;
        w[i] = i < n / 2 ? 1.0f : 9.0f;
    }
    FlashClusteringParameters p = cpu_params(5);
    p.min_points_per_centroid = 1;
    FlashClustering unweighted(d, k, p), weighted(d, k, p);
    run_clustering(unweighted, n, x.data(), false);
    run_clustering(weighted, n, x.data(), false, w.data());
    EXPECT_NEAR(unweighted.centroids[0], 0, 1.0);
    EXPECT_NEAR(weighted.centroids[0], 8, 1.0); // (-10 + 9 * 10) / 10
}

TEST(FaissCases, ProvidedInitCentroidsHelp) {
    const int d = 16, k = 40;
    const int64_t n = 8000;
    std::vector<float> x = gaussian_mixture(n, d, k, fresh_seed());
    FlashClustering long_run(d, k, cpu_params(30));
    run_clustering(long_run, n, x.data(), false);
    FlashClustering cold(d, k, cpu_params(2)), warm(d, k, cpu_params(2));
    const double cold_obj = final_obj(cold, n, x.data());
    warm.centroids = long_run.centroids;
    const double warm_obj = final_obj(warm, n, x.data());
    EXPECT_LT(warm_obj, cold_obj);
}

TEST(FaissCases, StatsObjEqualsReturnedObj) {
    const int d = 8, k = 16;
    const int64_t n = 3000;
    std::vector<float> x = randn(n * d, fresh_seed());
    std::vector<float> cent(k * d);
    FlashParameters fp;
    fp.backend = BackendKind::CPU;
    const float obj = kmeans_clustering(d, n, k, x.data(), cent.data(), fp);
    FlashClustering c(d, k, cpu_params());
    run_clustering(c, n, x.data(), false);
    EXPECT_EQ(obj, c.iteration_stats.back().obj);
    EXPECT_EQ(cent, c.centroids);
}

TEST(FaissCases, NredoImprovesL2AndIpSpherical) {
    const int d = 16, k = 30;
    const int64_t n = 3000;
    std::vector<float> x = gaussian_mixture(n, d, 12, fresh_seed());
    for (bool ip : {false, true}) {
        SCOPED_TRACE(ip);
        FlashClusteringParameters p = cpu_params(5);
        p.spherical = ip;
        FlashClustering once(d, k, p);
        p.nredo = 5;
        FlashClustering redo(d, k, p);
        const double o1 = final_obj(once, n, x.data(), ip);
        const double o5 = final_obj(redo, n, x.data(), ip);
        if (ip) {
            EXPECT_GE(o5, o1);
        } else {
            EXPECT_LE(o5, o1);
        }
        // The kept stats end with the best redo's last iteration.
        EXPECT_EQ(redo.iteration_stats.size() % 5, 0u);
    }
}

TEST(FaissCases, DeterministicRunToRun) {
    const int d = 20, k = 64;
    const int64_t n = 9000;
    std::vector<float> x = gaussian_mixture(n, d, 30, fresh_seed());
    FlashClustering a(d, k, cpu_params(8)), b(d, k, cpu_params(8));
    FlashClusteringParameters one_thread = cpu_params(8);
    one_thread.num_threads = 1;
    FlashClustering c1(d, k, one_thread);
    auto ra = run_clustering(a, n, x.data(), false);
    auto rb = run_clustering(b, n, x.data(), false);
    auto rc = run_clustering(c1, n, x.data(), false);
    EXPECT_EQ(ra.centroids, rb.centroids);
    EXPECT_EQ(ra.centroids, rc.centroids);
    for (size_t i = 0; i < ra.stats.size(); i++) {
        EXPECT_EQ(ra.stats[i].obj, rc.stats[i].obj);
    }
}

} // namespace

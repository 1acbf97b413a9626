// Runs faiss::Clustering and faiss_flash::FlashClustering on the same input
// and compares what a FAISS user observes: per-iteration objective, final
// centroids, the index's content; and whole indexes trained by FAISS and by
// train_index, by their recall.

#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <vector>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/index_factory.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/engine/backend_factory.h>
#include <faiss_flash/train_index.h>

#include "knn_recall.h"

namespace faiss_flash {
namespace testing {

struct ClusteringRun {
    std::vector<float> centroids;
    std::vector<faiss::ClusteringIterationStats> stats;
    int64_t index_ntotal = 0;
};

inline std::unique_ptr<faiss::IndexFlat> flat_index(int d, bool inner_product) {
    if (inner_product) {
        return std::make_unique<faiss::IndexFlatIP>(d);
    }
    return std::make_unique<faiss::IndexFlatL2>(d);
}

/// Trains `clus` (a faiss::Clustering or a FlashClustering) with optional
/// weights and initial centroids.
inline ClusteringRun run_clustering(
        faiss::Clustering& clus,
        int64_t n,
        const float* x,
        bool inner_product,
        const float* weights = nullptr,
        const std::vector<float>& init = {}) {
    auto index = flat_index(clus.d, inner_product);
    clus.centroids = init;
    clus.train(n, x, *index, weights);
    return {clus.centroids, clus.iteration_stats, index->ntotal};
}

/// Same parameters, same data: FAISS's result and ours.
struct Pair {
    ClusteringRun faiss;
    ClusteringRun flash;
};

inline Pair run_both(
        int d,
        int k,
        const faiss::ClusteringParameters& cp,
        int64_t n,
        const float* x,
        bool inner_product = false,
        const float* weights = nullptr,
        const std::vector<float>& init = {},
        BackendKind backend = BackendKind::CPU) {
    faiss::Clustering ref(d, k, cp);
    FlashClusteringParameters fp;
    static_cast<faiss::ClusteringParameters&>(fp) = cp;
    fp.backend = backend;
    FlashClustering ours(d, k, fp);
    Pair p;
    p.faiss = run_clustering(ref, n, x, inner_product, weights, init);
    p.flash = run_clustering(ours, n, x, inner_product, weights, init);
    return p;
}

/** Per-iteration objective within obj_rtol, centroids within a relative
 * mean-squared difference of centroid_rtol. The first iteration starts from
 * FAISS's own initial centroids, so its objective must agree to fp32
 * rounding (2e-5: FAISS sums it in fp32) whatever the backend; later ones
 * may drift once a near-tie point goes to the other centroid, which the GPU
 * products (rounded differently from FAISS's sgemm) do on small data.
 */
inline void expect_equivalent(
        const Pair& p,
        BackendKind backend = BackendKind::CPU) {
    const double obj_rtol = backend == BackendKind::CUDA ? 1e-3 : 1e-4;
    const double centroid_rtol = backend == BackendKind::CUDA ? 1e-3 : 1e-4;
    if (!p.faiss.stats.empty()) {
        EXPECT_NEAR(p.flash.stats[0].obj, p.faiss.stats[0].obj,
                    2e-5 * std::fabs(p.faiss.stats[0].obj))
                << "objective of the first iteration";
    }
    ASSERT_EQ(p.faiss.stats.size(), p.flash.stats.size());
    for (size_t i = 0; i < p.faiss.stats.size(); i++) {
        const double a = p.faiss.stats[i].obj, b = p.flash.stats[i].obj;
        EXPECT_NEAR(b, a, obj_rtol * std::fabs(a) + 1e-30)
                << "objective of iteration " << i;
        EXPECT_EQ(p.faiss.stats[i].nsplit, p.flash.stats[i].nsplit)
                << "iteration " << i;
        EXPECT_NEAR(p.faiss.stats[i].imbalance_factor,
                    p.flash.stats[i].imbalance_factor,
                    1e-2 * p.faiss.stats[i].imbalance_factor)
                << "iteration " << i;
    }
    ASSERT_EQ(p.faiss.centroids.size(), p.flash.centroids.size());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < p.faiss.centroids.size(); i++) {
        const double e = double(p.faiss.centroids[i]) - p.flash.centroids[i];
        diff += e * e;
        norm += double(p.faiss.centroids[i]) * p.faiss.centroids[i];
    }
    EXPECT_LE(diff, centroid_rtol * norm + 1e-30)
            << "relative squared centroid difference " << diff / norm;
    EXPECT_EQ(p.faiss.index_ntotal, p.flash.index_ntotal);
}

/// One index_factory product trained by FAISS (index.train) and one
/// trained by train_index, then both filled with the same database.
/// configure, if given, adjusts both before training.
struct IndexPair {
    std::unique_ptr<faiss::Index> faiss;
    std::unique_ptr<faiss::Index> flash;
};

inline IndexPair train_both_and_add(
        const char* factory,
        int d,
        int64_t n_train,
        const float* x_train,
        int64_t nb,
        const float* xb,
        faiss::MetricType metric = faiss::METRIC_L2,
        const std::function<void(faiss::Index&)>& configure = {}) {
    IndexPair p;
    p.faiss.reset(faiss::index_factory(d, factory, metric));
    p.flash.reset(faiss::index_factory(d, factory, metric));
    if (configure) {
        configure(*p.faiss);
        configure(*p.flash);
    }
    p.faiss->train(n_train, x_train);
    FlashParameters cpu;
    cpu.backend = BackendKind::CPU;
    train_index(p.flash.get(), n_train, x_train, cpu);
    EXPECT_TRUE(p.flash->is_trained);
    p.faiss->add(nb, xb);
    p.flash->add(nb, xb);
    return p;
}

/// Recall@k of both indexes against the exact neighbours among xb, printed;
/// train_index's may not be below the FAISS-trained one's by more than
/// `tol`. (It may be above: where a near-tie goes the other way, e.g. in
/// OPQ's inner PQ training, the two trainings differ like two seeds do.)
inline void expect_same_recall(
        const IndexPair& p,
        const float* xb,
        int64_t nb,
        const float* xq,
        int64_t nq,
        int nprobe,
        double tol,
        int k = 10) {
    const int d = p.faiss->d;
    std::vector<idx_t> gt =
            exact_knn(xb, nb, xq, nq, d, k, p.faiss->metric_type);
    set_nprobe(p.faiss.get(), nprobe);
    set_nprobe(p.flash.get(), nprobe);
    const double r_faiss = recall_at_k(*p.faiss, xq, nq, gt, k);
    const double r_flash = recall_at_k(*p.flash, xq, nq, gt, k);
    std::cout << "recall@" << k << " nprobe=" << nprobe
              << ": FAISS-trained " << r_faiss << ", train_index "
              << r_flash << "\n";
    EXPECT_GE(r_flash, r_faiss - tol);
}

/// Test fixture parameterised by backend; CUDA cases skip visibly where no
/// GPU is usable.
class BackendTest : public ::testing::TestWithParam<BackendKind> {
   protected:
    void SetUp() override {
        if (GetParam() == BackendKind::CUDA && !cuda_backend_available()) {
            GTEST_SKIP() << "no usable GPU (CUDA backend not built or no device)";
        }
    }
    BackendKind backend() const {
        return GetParam();
    }
};

} // namespace testing

inline void PrintTo(BackendKind b, std::ostream* os) {
    *os << (b == BackendKind::CUDA ? "CUDA" : b == BackendKind::CPU ? "CPU" : "Auto");
}

namespace testing {

inline std::string backend_name(const ::testing::TestParamInfo<BackendKind>& info) {
    return info.param == BackendKind::CUDA ? "CUDA" : "CPU";
}

} // namespace testing
} // namespace faiss_flash

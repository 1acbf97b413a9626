// FlashParameters::observer: called once per Lloyd iteration, in order,
// with the statistics that end up in iteration_stats.

#include <gtest/gtest.h>

#include <faiss/IndexFlat.h>

#include <faiss_flash/BatchKMeans.h>
#include <faiss_flash/FlashClustering.h>

#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

/// Records every call.
struct Recorder : IterationObserver {
    std::vector<IterationProgress> calls;
    void on_iteration(const IterationProgress& p) override {
        calls.push_back(p);
    }
};

TEST(IterationObserver, SeesEveryIterationOfEveryRedo) {
    const int64_t n = 2000, d = 9;
    const int k = 17, niter = 4, nredo = 3;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const std::vector<float> x = gaussian_mixture(n, d, 8, seed);
    Recorder recorder;
    FlashClusteringParameters params;
    params.backend = BackendKind::CPU;
    params.niter = niter;
    params.nredo = nredo;
    params.observer = &recorder;
    FlashClustering clus(d, k, params);
    faiss::IndexFlatL2 index(d);
    clus.train(n, x.data(), index);

    ASSERT_EQ(recorder.calls.size(), size_t(niter * nredo));
    for (int redo = 0; redo < nredo; redo++) {
        for (int it = 0; it < niter; it++) {
            const IterationProgress& p = recorder.calls[redo * niter + it];
            EXPECT_EQ(p.redo, redo);
            EXPECT_EQ(p.nredo, nredo);
            EXPECT_EQ(p.iteration, it);
            EXPECT_EQ(p.niter, niter);
            EXPECT_EQ(float(p.objective), p.stats.obj); // stats: fp32, as FAISS
            if (redo * niter + it > 0) {
                EXPECT_GE(p.stats.time, recorder.calls[redo * niter + it - 1].stats.time);
            }
        }
    }
    // iteration_stats keeps the iterations up to the best redo, the same
    // statistics the observer saw
    const size_t kept = clus.iteration_stats.size();
    ASSERT_EQ(kept % niter, 0u);
    ASSERT_GE(kept, size_t(niter));
    for (size_t i = 0; i < kept; i++) {
        EXPECT_EQ(clus.iteration_stats[i].obj, recorder.calls[i].stats.obj) << i;
        EXPECT_EQ(clus.iteration_stats[i].imbalance_factor,
                  recorder.calls[i].stats.imbalance_factor) << i;
    }
}

TEST(IterationObserver, BatchObjectiveIsTheSumOverProblems) {
    const int64_t B = 3, n = 600, d = 5, k = 7;
    const std::vector<float> x = gaussian_mixture(B * n, d, 6, fresh_seed());
    Recorder recorder;
    FlashClusteringParameters params;
    params.backend = BackendKind::CPU;
    params.niter = 5;
    params.observer = &recorder;
    const BatchKMeansResult r = batch_kmeans(x.data(), B, n, d, k, params);
    ASSERT_EQ(recorder.calls.size(), 5u);
    for (int it = 0; it < 5; it++) {
        double sum = 0;
        for (int64_t b = 0; b < B; b++) {
            sum += r.iteration_stats[b][it].obj;
        }
        // stats hold fp32 objectives, the observer their fp64 sum
        EXPECT_NEAR(recorder.calls[it].objective, sum, 1e-6 * sum) << it;
        EXPECT_EQ(recorder.calls[it].stats.obj, r.iteration_stats[0][it].obj);
    }
}

TEST(IterationObserver, AnExceptionStopsTheRun) {
    struct Stop : IterationObserver {
        void on_iteration(const IterationProgress& p) override {
            if (p.iteration == 2) {
                throw std::runtime_error("stop at 2");
            }
        }
    } stop;
    const std::vector<float> x = gaussian_mixture(500, 4, 5, fresh_seed());
    FlashClusteringParameters params;
    params.backend = BackendKind::CPU;
    params.observer = &stop;
    FlashClustering clus(4, 5, params);
    faiss::IndexFlatL2 index(4);
    EXPECT_THROW(clus.train(500, x.data(), index), std::runtime_error);
    EXPECT_EQ(index.ntotal, 0);
}

} // namespace

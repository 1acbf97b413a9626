// Bad input gets FAISS's error (or a clear one where FAISS has none), and
// an interrupted training stops through faiss::InterruptCallback.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <faiss_flash/engine/backend_factory.h>

#include "faiss_compare.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

FlashClusteringParameters cpu_params() {
    FlashClusteringParameters p;
    p.backend = BackendKind::CPU;
    p.niter = 5;
    return p;
}

TEST(BadInput, NonPositiveKOrD) {
    EXPECT_NE(error_of([] { FlashClustering(8, 0); }).find("k=0 must be > 0"),
              std::string::npos);
    EXPECT_NE(error_of([] { FlashClustering(8, -3); }).find("k=-3"),
              std::string::npos);
    EXPECT_NE(error_of([] { FlashClustering(0, 4); }).find("d=0"),
              std::string::npos);
}

TEST(BadInput, FewerPointsThanClustersHasFaissMessage) {
    std::vector<float> x = randn(5 * 4, 1);
    FlashClustering c(4, 10, cpu_params());
    faiss::IndexFlatL2 index(4);
    const std::string msg = error_of([&] { c.train(5, x.data(), index); });
    EXPECT_NE(msg.find("Number of training points (5) should be at least as "
                       "large as number of clusters (10)"),
              std::string::npos)
            << msg;
}

TEST(BadInput, IndexDimensionMismatch) {
    std::vector<float> x = randn(100 * 4, 1);
    FlashClustering c(4, 3, cpu_params());
    faiss::IndexFlatL2 index(5);
    const std::string msg = error_of([&] { c.train(100, x.data(), index); });
    EXPECT_NE(msg.find("Index dimension 5 not the same as data dimension 4"),
              std::string::npos)
            << msg;
}

TEST(BadInput, NanOrInfAnywhere) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
        std::vector<float> x = randn(300 * 6, fresh_seed());
        x[299 * 6 + 5] = bad; // the very last value
        FlashClustering c(6, 4, cpu_params());
        faiss::IndexFlatL2 index(6);
        EXPECT_NE(error_of([&] { c.train(300, x.data(), index); })
                          .find("input contains NaN's or Inf's"),
                  std::string::npos);
        EXPECT_EQ(index.ntotal, 0);
    }
}

TEST(BadInput, MinPointsWarningAsFaiss) {
    std::vector<float> x = randn(100 * 3, 1);
    auto warning = [&](faiss::Clustering& c) {
        faiss::IndexFlatL2 index(3);
        ::testing::internal::CaptureStderr();
        c.train(100, x.data(), index);
        return ::testing::internal::GetCapturedStderr();
    };
    faiss::Clustering ref(3, 10);
    ref.niter = 2;
    FlashClusteringParameters p = cpu_params();
    p.niter = 2;
    FlashClustering ours(3, 10, p);
    const std::string expected = warning(ref);
    EXPECT_NE(expected.find("WARNING clustering 100 points to 10 centroids"),
              std::string::npos);
    EXPECT_EQ(warning(ours), expected);
}

struct InterruptAfter : faiss::InterruptCallback {
    int remaining;
    explicit InterruptAfter(int n) : remaining(n) {}
    bool want_interrupt() override {
        return remaining-- <= 0;
    }
};

TEST(BadInput, InterruptCallbackStopsTraining) {
    const int d = 8, k = 20;
    std::vector<float> x = randn(4000 * d, fresh_seed());
    FlashClusteringParameters p = cpu_params();
    p.niter = 50;
    FlashClustering c(d, k, p);
    faiss::IndexFlatL2 index(d);
    faiss::InterruptCallback::instance.reset(new InterruptAfter(3));
    const std::string msg = error_of([&] { c.train(4000, x.data(), index); });
    faiss::InterruptCallback::clear_instance();
    EXPECT_NE(msg.find("computation interrupted"), std::string::npos) << msg;
    EXPECT_LT(c.iteration_stats.size(), 50u);
    // Training works again once the callback is gone.
    c.iteration_stats.clear();
    c.centroids.clear();
    c.train(4000, x.data(), index);
    EXPECT_EQ(c.iteration_stats.size(), 50u);
}

TEST(BadInput, CudaBackendRequestedWithoutGpuIsClear) {
    if (cuda_backend_available()) {
        GTEST_SKIP() << "a GPU is usable here";
    }
    FlashClusteringParameters p = cpu_params();
    p.backend = BackendKind::CUDA;
    FlashClustering c(4, 3, p);
    std::vector<float> x = randn(400, 1);
    faiss::IndexFlatL2 index(4);
    const std::string msg = error_of([&] { c.train(100, x.data(), index); });
    EXPECT_NE(msg.find("CUDA"), std::string::npos) << msg;
}

} // namespace

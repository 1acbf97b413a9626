// CPU backend kernels against fp64 references, on fresh random inputs with
// odd shapes and poisoned outputs.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <tuple>

#include <faiss_flash/cpu/CpuBackend.h>
#include <faiss_flash/cpu/assign_tile.h>
#include <faiss_flash/cpu/centroid_update.h>

#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

constexpr double kFp32Eps = 1.2e-7;

/// Shapes (n, k, d): D = 1, 3, 17, 1000; n and k off the 16 x 6 tile grid;
/// k = 1; a block boundary (n > block_points(d)).
const std::vector<std::tuple<int64_t, int64_t, int64_t>> kShapes = {
        {1000, 1, 17},
        {333, 7, 1},
        {517, 13, 3},
        {1000, 37, 17},
        {257, 100, 1000},
        {4099, 301, 128},
        {3, 3, 5},
};

/// The fp32 error bound of one score: a d-term dot product and two norms.
double score_tolerance(const float* x, const float* c, int64_t d, Metric m) {
    double xx = 0, cc = 0;
    for (int64_t j = 0; j < d; j++) {
        xx += double(x[j]) * x[j];
        cc += double(c[j]) * c[j];
    }
    const double scale = m == Metric::L2 ? xx + cc : std::sqrt(xx * cc);
    return 2 * (d + 4) * kFp32Eps * scale;
}

class AssignTest : public ::testing::TestWithParam<Metric> {};

TEST_P(AssignTest, MatchesFp64ArgminExceptCertifiedNearTies) {
    const Metric metric = GetParam();
    for (auto [n, k, d] : kShapes) {
        const uint64_t seed = fresh_seed();
        SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k
                                          << " d=" << d << " seed=" << seed);
        std::vector<float> x = randn(n * d, seed);
        std::vector<float> c = randn(k * d, seed + 1);
        std::vector<float> norms(n);
        for (int64_t i = 0; i < n; i++) {
            norms[i] = 0;
            for (int64_t j = 0; j < d; j++) {
                norms[i] += x[i * d + j] * x[i * d + j];
            }
        }
        cpu::PackedCentroids packed;
        cpu::pack_centroids(c.data(), k, d, metric, packed);
        std::vector<int64_t> labels(n, -7);
        std::vector<float> dis(n, std::nanf(""));
        cpu::assign_points(x.data(), norms.data(), n, packed, metric, 2,
                           labels.data(), dis.data());

        Reference ref = assign64(x.data(), n, c.data(), k, d, metric);
        int64_t n_ties = 0;
        for (int64_t i = 0; i < n; i++) {
            ASSERT_GE(labels[i], 0) << "point " << i << " not written";
            ASSERT_LT(labels[i], k);
            ASSERT_FALSE(std::isnan(dis[i])) << "distance " << i << " not written";
            const float* xi = x.data() + i * d;
            const float* ci = c.data() + labels[i] * d;
            const double tol = score_tolerance(xi, ci, d, metric);
            const double got = score64(xi, ci, d, metric);
            if (labels[i] != ref.label[i]) {
                // Only a certified near-tie may differ from fp64.
                ASSERT_LE(got - ref.best[i], tol) << "point " << i;
                n_ties++;
            }
            const double reported = metric == Metric::L2 ? dis[i] : -dis[i];
            ASSERT_NEAR(reported, got, tol) << "point " << i;
        }
        EXPECT_LE(n_ties, n / 100 + 1);
    }
}

TEST_P(AssignTest, TiesGoToLowestIndex) {
    const Metric metric = GetParam();
    const int64_t n = 50, d = 9, k = 20;
    std::vector<float> x = randn(n * d, fresh_seed());
    // Every centroid is the same vector: all scores tie exactly.
    std::vector<float> one = randn(d, fresh_seed());
    std::vector<float> c(k * d);
    for (int64_t j = 0; j < k; j++) {
        std::memcpy(c.data() + j * d, one.data(), sizeof(float) * d);
    }
    std::vector<float> norms(n, 0);
    cpu::PackedCentroids packed;
    cpu::pack_centroids(c.data(), k, d, metric, packed);
    std::vector<int64_t> labels(n, -1);
    cpu::assign_points(x.data(), norms.data(), n, packed, metric, 2,
                       labels.data(), nullptr);
    for (int64_t l : labels) {
        EXPECT_EQ(l, 0);
    }
}

TEST_P(AssignTest, BitIdenticalAcrossRunsAndThreadCounts) {
    const Metric metric = GetParam();
    const int64_t n = 3001, k = 97, d = 33;
    const uint64_t seed = fresh_seed();
    std::vector<float> x = randn(n * d, seed), c = randn(k * d, seed + 1);
    std::vector<float> norms(n, 1.0f);
    cpu::PackedCentroids packed;
    cpu::pack_centroids(c.data(), k, d, metric, packed);
    std::vector<int64_t> l1(n), l2(n);
    std::vector<float> d1(n), d2(n);
    cpu::assign_points(x.data(), norms.data(), n, packed, metric, 1, l1.data(),
                       d1.data());
    cpu::assign_points(x.data(), norms.data(), n, packed, metric, 2, l2.data(),
                       d2.data());
    EXPECT_EQ(l1, l2);
    EXPECT_EQ(0, std::memcmp(d1.data(), d2.data(), sizeof(float) * n));
}

INSTANTIATE_TEST_SUITE_P(
        Metrics,
        AssignTest,
        ::testing::Values(Metric::L2, Metric::InnerProduct),
        [](const auto& info) {
            return info.param == Metric::L2 ? "L2" : "IP";
        });

TEST(CentroidUpdate, MatchesFp64MeansWithWeightsFrozenAndEmpty) {
    for (auto [n, k, d] : kShapes) {
        for (bool weighted : {false, true}) {
            const uint64_t seed = fresh_seed();
            SCOPED_TRACE(::testing::Message()
                         << "n=" << n << " k=" << k << " d=" << d
                         << " weighted=" << weighted << " seed=" << seed);
            std::vector<float> x = randn(n * d, seed);
            std::mt19937_64 rng(seed);
            // Labels avoid the last cluster so it is empty (when k > 1).
            const int64_t k_used = k > 1 ? k - 1 : 1;
            std::vector<int64_t> labels(n);
            for (auto& l : labels) {
                l = rng() % k_used;
            }
            std::vector<float> w(n);
            for (auto& v : w) {
                v = 0.5f + (rng() % 1000) / 1000.0f;
            }
            const int64_t k_frozen = k > 2 ? 1 : 0;
            std::vector<float> old = randn(k * d, seed + 2), c = old;
            std::vector<float> hassign(k, -1);
            std::vector<int64_t> counts(k, -1);
            cpu::UpdateStats st = cpu::update_centroids(
                    x.data(), weighted ? w.data() : nullptr, n, d, k, k_frozen,
                    labels.data(), 2, c.data(), hassign.data(), counts.data());

            std::vector<double> sum(k * d, 0), wsum(k, 0);
            std::vector<int64_t> cnt(k, 0);
            for (int64_t i = 0; i < n; i++) {
                const double wi = weighted ? w[i] : 1.0;
                wsum[labels[i]] += wi;
                cnt[labels[i]]++;
                for (int64_t j = 0; j < d; j++) {
                    sum[labels[i] * d + j] += wi * x[i * d + j];
                }
            }
            int64_t empty = 0;
            for (int64_t ci = 0; ci < k; ci++) {
                ASSERT_EQ(counts[ci], cnt[ci]);
                ASSERT_NEAR(hassign[ci], wsum[ci], 1e-5 * (1 + wsum[ci]));
                for (int64_t j = 0; j < d; j++) {
                    const double expect = ci < k_frozen ? old[ci * d + j]
                            : wsum[ci] == 0             ? 0.0
                                                        : sum[ci * d + j] / wsum[ci];
                    ASSERT_NEAR(c[ci * d + j], expect, 1e-5 * (1 + std::fabs(expect)))
                            << "centroid " << ci << " dim " << j;
                }
                empty += ci >= k_frozen && wsum[ci] == 0;
            }
            EXPECT_EQ(st.n_empty, empty);
            EXPECT_GT(st.centroid_shift, 0);
        }
    }
}

TEST(CpuBackend, StepReportsFp64ObjectiveAndImbalance) {
    const int64_t B = 3, n = 700, k = 11, d = 19;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    std::vector<float> x = randn(B * n * d, seed);
    std::vector<float> c = randn(B * k * d, seed + 1);
    cpu::CpuBackend backend(2);
    LloydShape shape{B, n, d, k, Metric::L2};
    backend.bind_points(shape, x.data(), nullptr);
    backend.set_centroids(c.data());
    std::vector<StepResult> res(B);
    StepTiming timing;
    backend.assign_update(0, res.data(), &timing);
    for (int64_t b = 0; b < B; b++) {
        Reference ref = assign64(x.data() + b * n * d, n, c.data() + b * k * d,
                                 k, d, Metric::L2);
        double obj = 0;
        std::vector<int64_t> counts(k, 0);
        for (int64_t i = 0; i < n; i++) {
            obj += ref.best[i];
            counts[ref.label[i]]++;
        }
        EXPECT_NEAR(res[b].obj, obj, 1e-5 * obj);
        double sq = 0;
        for (int64_t v : counts) {
            sq += double(v) * v;
        }
        EXPECT_NEAR(res[b].imbalance_factor, sq * k / (double(n) * n), 1e-2);
    }
    EXPECT_GE(timing.assign_s, 0);
}

} // namespace

// IndexFlatFlash: its search answers as IndexFlat's does, and FAISS's own
// training uses it through IndexIVF::clustering_index and
// ProductQuantizer::assign_index without losing recall.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>

#include <faiss_flash/IndexFlatFlash.h>

#include "faiss_compare.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;

namespace {

FlashParameters cpu() {
    FlashParameters p;
    p.backend = BackendKind::CPU;
    return p;
}

struct SearchResult {
    std::vector<float> distances;
    std::vector<idx_t> labels;
};

SearchResult search(const faiss::Index& index, int64_t n, const float* x, int k) {
    SearchResult r{std::vector<float>(n * k), std::vector<idx_t>(n * k)};
    index.search(n, x, k, r.distances.data(), r.labels.data());
    return r;
}

double sq_norm(const float* v, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        s += double(v[j]) * v[j];
    }
    return s;
}

/// k == 1 against IndexFlat: the same label except certified near-ties
/// (the two labels' fp64 scores within fp32 rounding of each other), the
/// distance within fp32 rounding of IndexFlat's.
void expect_nearest_as_index_flat(
        int64_t nq,
        int64_t nb,
        int d,
        faiss::MetricType metric) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    std::vector<float> xb = gaussian_mixture(nb, d, 7, seed);
    std::vector<float> xq = gaussian_mixture(nq, d, 7, seed + 2);
    faiss::IndexFlat reference(d, metric);
    IndexFlatFlash ours(d, metric, cpu());
    reference.add(nb, xb.data());
    ours.add(nb, xb.data());
    SearchResult want = search(reference, nq, xq.data(), 1);
    SearchResult got = search(ours, nq, xq.data(), 1);

    const Metric m = metric == faiss::METRIC_L2 ? Metric::L2 : Metric::InnerProduct;
    int64_t ties = 0;
    for (int64_t i = 0; i < nq; i++) {
        const float* q = xq.data() + i * d;
        const idx_t a = want.labels[i], b = got.labels[i];
        ASSERT_GE(b, 0);
        ASSERT_LT(b, nb);
        // fp32 rounding of ||q||^2 + ||c||^2 - 2<q,c> (or <q,c>)
        const double scale =
                1e-5 * (sq_norm(q, d) + sq_norm(xb.data() + a * d, d));
        if (a != b) {
            ties++;
            const double sa = score64(q, xb.data() + a * d, d, m);
            const double sb = score64(q, xb.data() + b * d, d, m);
            EXPECT_LE(std::fabs(sa - sb), scale)
                    << "query " << i << ": labels " << a << " vs " << b
                    << " are not a near-tie";
        }
        EXPECT_NEAR(got.distances[i], want.distances[i], scale) << "query " << i;
    }
    EXPECT_LE(ties, nq / 100 + 1);
}

TEST(IndexFlatFlash, NearestAsIndexFlatL2) {
    expect_nearest_as_index_flat(3000, 700, 37, faiss::METRIC_L2);
}

TEST(IndexFlatFlash, NearestAsIndexFlatInnerProduct) {
    expect_nearest_as_index_flat(3000, 700, 24, faiss::METRIC_INNER_PRODUCT);
}

TEST(IndexFlatFlash, FewQueriesAsIndexFlat) {
    // below FAISS's BLAS threshold (20 queries): FAISS's direct path
    expect_nearest_as_index_flat(7, 300, 16, faiss::METRIC_L2);
}

TEST(IndexFlatFlash, KGreaterThanOneIsIndexFlatSearch) {
    const int d = 12;
    std::vector<float> xb = randn(500 * d, fresh_seed());
    std::vector<float> xq = randn(50 * d, fresh_seed());
    faiss::IndexFlatL2 reference(d);
    IndexFlatFlash ours(d, faiss::METRIC_L2, cpu());
    reference.add(500, xb.data());
    ours.add(500, xb.data());
    SearchResult want = search(reference, 50, xq.data(), 5);
    SearchResult got = search(ours, 50, xq.data(), 5);
    EXPECT_EQ(got.labels, want.labels);
    EXPECT_EQ(got.distances, want.distances);
}

TEST(IndexFlatFlash, EmptyIndexGivesNoResultsAndNoQueriesNothing) {
    const int d = 8;
    std::vector<float> xq = randn(30 * d, fresh_seed());
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        const float none = metric == faiss::METRIC_L2
                ? std::numeric_limits<float>::max()
                : std::numeric_limits<float>::lowest();
        IndexFlatFlash ours(d, metric, cpu());
        for (int k : {1, 3}) {
            for (int nq : {5, 30}) { // both sides of FAISS's BLAS threshold
                SearchResult got = search(ours, nq, xq.data(), k);
                EXPECT_EQ(got.labels, std::vector<idx_t>(nq * k, -1));
                EXPECT_EQ(got.distances, std::vector<float>(nq * k, none));
            }
        }
        ours.add(1, xq.data());
        EXPECT_NO_THROW(search(ours, 0, xq.data(), 1));
    }
}

TEST(IndexFlatFlash, NonFiniteQueriesAndOtherMetricsAsIndexFlat) {
    const int d = 10, nb = 200, nq = 40;
    std::vector<float> xb = randn(nb * d, fresh_seed());
    std::vector<float> xq = randn(nq * d, fresh_seed());
    xq[3 * d + 4] = std::numeric_limits<float>::quiet_NaN();
    xq[9 * d] = std::numeric_limits<float>::infinity();
    for (faiss::MetricType metric :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT, faiss::METRIC_L1}) {
        faiss::IndexFlat reference(d, metric);
        IndexFlatFlash ours(d, metric, cpu());
        reference.add(nb, xb.data());
        ours.add(nb, xb.data());
        SearchResult want = search(reference, nq, xq.data(), 1);
        SearchResult got = search(ours, nq, xq.data(), 1);
        EXPECT_EQ(got.labels, want.labels) << "metric " << metric;
        for (int i = 0; i < nq; i++) {
            // NaN == NaN does not hold: compare the bits' meaning
            EXPECT_TRUE(got.distances[i] == want.distances[i] ||
                        (std::isnan(got.distances[i]) &&
                         std::isnan(want.distances[i])))
                    << "metric " << metric << " query " << i;
        }
    }
}

/// IndexFlatFlash that counts its k == 1 searches: proves FAISS drives it.
struct CountingIndexFlatFlash : IndexFlatFlash {
    using IndexFlatFlash::IndexFlatFlash;
    mutable int nearest_searches = 0;
    void search(
            idx_t n,
            const float* x,
            idx_t k,
            float* distances,
            idx_t* labels,
            const faiss::SearchParameters* params) const override {
        nearest_searches += k == 1;
        IndexFlatFlash::search(n, x, k, distances, labels, params);
    }
};

struct HookData {
    static constexpr int d = 32;
    int64_t n_train, nb = 20000, nq = 500;
    std::vector<float> x_train, xb, xq;
    explicit HookData(int64_t n_train = 20000) : n_train(n_train) {
        const uint64_t seed = fresh_seed();
        std::vector<float> mu = mixture_centres(40, d, seed);
        x_train = sample_mixture(mu, d, n_train, seed + 1);
        xb = sample_mixture(mu, d, nb, seed + 2);
        xq = sample_mixture(mu, d, nq, seed + 3);
    }
};

TEST(IndexFlatFlash, AsClusteringIndexOfFaissIvfTraining) {
    HookData data;
    const int d = HookData::d, nlist = 128;
    IndexPair p;
    for (bool hooked : {false, true}) {
        auto quantizer = std::make_unique<faiss::IndexFlatL2>(d);
        auto ivf = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), d, nlist);
        ivf->own_fields = true;
        quantizer.release();
        CountingIndexFlatFlash assigner(d, faiss::METRIC_L2, cpu());
        if (hooked) {
            ivf->clustering_index = &assigner;
        }
        ivf->train(data.n_train, data.x_train.data());
        ivf->clustering_index = nullptr;
        if (hooked) {
            EXPECT_EQ(assigner.nearest_searches, ivf->cp.niter);
        }
        ivf->add(data.nb, data.xb.data());
        (hooked ? p.flash : p.faiss) = std::move(ivf);
    }
    expect_same_recall(p, data.xb.data(), data.nb, data.xq.data(), data.nq,
                       8, 0.005);
}

TEST(IndexFlatFlash, AsAssignIndexOfFaissPqTraining) {
    // FAISS's own PQ training is slow at dsub = 4 (about 1 s per 1000
    // points here): a 10000-point training set.
    HookData data(10000);
    const int d = HookData::d, nlist = 64, M = 8;
    IndexPair p;
    for (bool hooked : {false, true}) {
        auto quantizer = std::make_unique<faiss::IndexFlatL2>(d);
        auto ivf = std::make_unique<faiss::IndexIVFPQ>(
                quantizer.get(), d, nlist, M, 8);
        ivf->own_fields = true;
        quantizer.release();
        CountingIndexFlatFlash assigner(d / M, faiss::METRIC_L2, cpu());
        if (hooked) {
            ivf->pq.assign_index = &assigner;
        }
        ivf->train(data.n_train, data.x_train.data());
        if (hooked) {
            // M sub-quantizers, cp.niter searches each
            EXPECT_EQ(assigner.nearest_searches, M * ivf->pq.cp.niter);
        }
        ivf->pq.assign_index = nullptr;
        ivf->add(data.nb, data.xb.data());
        (hooked ? p.flash : p.faiss) = std::move(ivf);
    }
    expect_same_recall(p, data.xb.data(), data.nb, data.xq.data(), data.nq,
                       8, 0.005);
}

} // namespace

// Runs faiss::Clustering and faiss_flash::FlashClustering on the same input
// and compares what a FAISS user observes: per-iteration objective, final
// centroids, the index's content; and whole indexes trained by FAISS and by
// train_index, by their recall.

#pragma once

#include <gtest/gtest.h>

#include <algorithm>
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
#include "test_utils.h"

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

/** Same parameters, same data: FAISS's whole run and ours, and the same
 * run taken one iteration at a time. Step t starts both from the centroids
 * FAISS has after t iterations (FAISS's initial centroids for t = 0; each
 * next start is FAISS's step result) and runs one Lloyd iteration. */
struct Pair {
    int d = 0;
    ClusteringRun faiss;
    ClusteringRun flash;
    std::vector<ClusteringRun> faiss_steps;
    std::vector<ClusteringRun> flash_steps;
    /// Per step: the points that FAISS's search and our backend's
    /// assignment give different centroids from the step's start.
    std::vector<int64_t> step_flips;
    /// Per iteration t of our whole run (its first restart): the same
    /// count from our centroids after t iterations. A near-tie may go the
    /// other way on our path and not on FAISS's (the paths differ by
    /// rounding), and the whole runs part there too.
    std::vector<int64_t> own_flips;
};

/** The points that FAISS's clustering (its flat index's search, fp32 BLAS)
 * and our backend assign to different centroids: each side's own
 * post-processing of one start (theirs, ours), what each side's iteration
 * assigns to. The two differ in the last bits where the post-processing
 * rounds differently (the GPU renormalises in its own order), which can
 * send a near-tie point either way as well.
 * Each must be a near-tie: the two centroids' exact (fp64) distances or
 * inner products (FAISS's centroids) within 1e-4·(|x|² + |c|²) (L2) or
 * 1e-4·|x|·|c| (IP), a hundred times the fp32 rounding of a d ≤ 1000
 * product; one further apart is a wrong assignment and fails here. */
inline int64_t assignment_flips(
        int d,
        int64_t n,
        const float* x,
        const float* weights,
        const std::vector<float>& centroids,
        const std::vector<float>& our_centroids,
        bool inner_product,
        BackendKind backend) {
    const int64_t k = int64_t(centroids.size()) / d;
    EXPECT_EQ(centroids.size(), our_centroids.size());
    auto index = flat_index(d, inner_product);
    index->add(k, centroids.data());
    std::vector<float> dist(n);
    std::vector<faiss::Index::idx_t> theirs(n);
    index->search(n, x, 1, dist.data(), theirs.data());

    const Metric metric = inner_product ? Metric::InnerProduct : Metric::L2;
    FlashParameters params;
    params.backend = backend;
    std::unique_ptr<LloydBackend> engine = make_backend(params);
    LloydShape shape;
    shape.n = n;
    shape.d = d;
    shape.k = k;
    shape.metric = metric;
    engine->bind_points(shape, x, weights);
    engine->set_centroids(our_centroids.data());
    std::vector<int64_t> ours(n);
    engine->assign(ours.data(), nullptr);

    auto norm2 = [d](const float* v) {
        double s = 0;
        for (int i = 0; i < d; i++) {
            s += double(v[i]) * v[i];
        }
        return s;
    };
    int64_t flips = 0;
    for (int64_t r = 0; r < n; r++) {
        if (theirs[r] == ours[r]) {
            continue;
        }
        flips++;
        const float* point = x + r * d;
        const float* c_theirs = centroids.data() + theirs[r] * d;
        const float* c_ours = centroids.data() + ours[r] * d;
        const double x2 = norm2(point), c2 = std::max(norm2(c_theirs), norm2(c_ours));
        const double scale = inner_product ? std::sqrt(x2 * c2) : x2 + c2;
        EXPECT_LE(std::fabs(score64(point, c_theirs, d, metric) - score64(point, c_ours, d, metric)),
                  1e-4 * scale)
                << "point " << r << ": FAISS's centroid " << theirs[r] << ", ours "
                << ours[r] << " is not a near-tie";
    }
    return flips;
}

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
    auto run_faiss = [&](const faiss::ClusteringParameters& params,
                         const std::vector<float>& start) {
        faiss::Clustering ref(d, k, params);
        return run_clustering(ref, n, x, inner_product, weights, start);
    };
    auto run_flash = [&](const faiss::ClusteringParameters& params,
                         const std::vector<float>& start) {
        FlashClusteringParameters fp;
        static_cast<faiss::ClusteringParameters&>(fp) = params;
        fp.backend = backend;
        FlashClustering ours(d, k, fp);
        return run_clustering(ours, n, x, inner_product, weights, start);
    };
    Pair p;
    p.d = d;
    p.faiss = run_faiss(cp, init);
    p.flash = run_flash(cp, init);
    if (cp.niter > 0) {
        faiss::ClusteringParameters initial = cp, step = cp, ours_so_far = cp;
        initial.niter = 0;
        initial.nredo = 1;
        step.niter = 1;
        step.nredo = 1;
        ours_so_far.nredo = 1;
        // What each side's iteration assigns to, from centroids c: c
        // post-processed again (FAISS renormalises or rounds given
        // centroids before its first iteration, and so do we, on our
        // backend).
        auto flips_from = [&](const std::vector<float>& c) {
            return assignment_flips(d, n, x, weights, run_faiss(initial, c).centroids, run_flash(initial, c).centroids,
                                    inner_product, backend);
        };
        std::vector<float> start = run_faiss(initial, init).centroids;
        for (int t = 0; t < cp.niter; t++) {
            p.step_flips.push_back(flips_from(start));
            p.faiss_steps.push_back(run_faiss(step, start));
            p.flash_steps.push_back(run_flash(step, start));
            start = p.faiss_steps.back().centroids;
            // Our run is deterministic: t iterations of it again are the
            // first t of the whole run.
            ours_so_far.niter = t;
            p.own_flips.push_back(flips_from(run_flash(ours_so_far, init).centroids));
        }
    }
    return p;
}

/// Centroids (rows of d) that differ between a and b by more than fp32
/// rounding: |a_j - b_j|^2 > 1e-8 |a_j|^2 (or > 1e-8 where a_j is zero).
inline int moved_centroids(
        const std::vector<float>& a,
        const std::vector<float>& b,
        int d) {
    int moved = 0;
    for (size_t j = 0; j + d <= a.size(); j += d) {
        double diff = 0, norm = 0;
        for (int i = 0; i < d; i++) {
            const double e = double(a[j + i]) - b[j + i];
            diff += e * e;
            norm += double(a[j + i]) * a[j + i];
        }
        moved += diff > 1e-8 * std::max(norm, 1.0) ? 1 : 0;
    }
    return moved;
}

/** Compares what a FAISS user observes, in two parts.
 *
 * Every iteration on its own (the steps of Pair): from the same centroids,
 * the objective agrees to fp32 rounding (2e-5: FAISS sums it in fp32), and
 * the splits and the new centroids are the same up to fp32 rounding, except
 * where a point at a near-tie went the other way: our products round
 * differently from FAISS's sgemm (differently again on the GPU), and such a
 * point moves its two centroids (in the worst of ~2000 spherical steps, by
 * 1.2e-4 of the whole set's squared norm: a cluster of few points) and may
 * empty one, which changes the splits and the donors they draw. So the
 * splits may differ by one per such point (assignment_flips, which checks
 * that each is a near-tie), and the centroids by two per such point and two
 * per split; where no point went the other way, nothing may.
 *
 * The whole run: the same number of iterations, the first iteration's
 * objective to 2e-5 (same initial centroids), and each later one of the
 * first restart within obj_rtol up to the first iteration where a point
 * went the other way on either path (FAISS's: step_flips; ours:
 * own_flips); the first iteration of each later restart within obj_rtol
 * (the restarts' paths are not followed). After such a point the two runs
 * are different Lloyd runs to different local optima: one run in ~300 of
 * the spherical case left a cluster empty in FAISS's run and not in ours
 * and ended with centroids 5% apart; on the GPU, L2 mixtures of k = 100
 * ended with objectives 4% and 14% apart, either side ahead. So their
 * objectives are not compared there, and the whole runs' splits and
 * centroids are compared through the steps above, not end to end.
 */
inline void expect_equivalent(
        const Pair& p,
        BackendKind backend = BackendKind::CPU) {
    const double obj_rtol = backend == BackendKind::CUDA ? 1e-3 : 1e-4;
    ASSERT_EQ(p.faiss.stats.size(), p.flash.stats.size());
    if (!p.faiss.stats.empty()) {
        EXPECT_NEAR(p.flash.stats[0].obj, p.faiss.stats[0].obj,
                    2e-5 * std::fabs(p.faiss.stats[0].obj))
                << "objective of the first iteration";
    }
    ASSERT_EQ(p.step_flips.size(), p.own_flips.size());
    const size_t niter = p.step_flips.size();
    bool diverged = false;
    for (size_t i = 0; i < p.faiss.stats.size(); i++) {
        const bool restart_begins = niter > 0 && i % niter == 0;
        if (restart_begins || (i < niter && !diverged)) {
            const double a = p.faiss.stats[i].obj, b = p.flash.stats[i].obj;
            EXPECT_NEAR(b, a, obj_rtol * std::fabs(a) + 1e-30) << "objective of iteration " << i;
        }
        // Iteration i's objective is measured before its update: a point
        // that goes the other way in step i shows from iteration i + 1.
        diverged = diverged || (i < niter && (p.step_flips[i] > 0 || p.own_flips[i] > 0));
    }
    EXPECT_EQ(p.faiss.centroids.size(), p.flash.centroids.size());
    EXPECT_EQ(p.faiss.index_ntotal, p.flash.index_ntotal);

    ASSERT_EQ(p.faiss_steps.size(), p.flash_steps.size());
    for (size_t t = 0; t < p.faiss_steps.size(); t++) {
        SCOPED_TRACE(::testing::Message()
                     << "one iteration from FAISS's centroids after " << t
                     << " iterations");
        const ClusteringRun& ref = p.faiss_steps[t];
        const ClusteringRun& ours = p.flash_steps[t];
        ASSERT_EQ(ref.stats.size(), 1u);
        ASSERT_EQ(ours.stats.size(), 1u);
        EXPECT_NEAR(ours.stats[0].obj, ref.stats[0].obj,
                    2e-5 * std::fabs(ref.stats[0].obj));
        const int64_t flips = p.step_flips[t];
        EXPECT_LE(std::abs(ref.stats[0].nsplit - ours.stats[0].nsplit), flips)
                << "splits: FAISS " << ref.stats[0].nsplit << ", ours " << ours.stats[0].nsplit;
        EXPECT_NEAR(ref.stats[0].imbalance_factor,
                    ours.stats[0].imbalance_factor,
                    1e-2 * ref.stats[0].imbalance_factor);
        ASSERT_EQ(ref.centroids.size(), ours.centroids.size());
        // A split moves its donor too, a centroid drawn by cluster weight:
        // once the weights differ, the draw may fall on another one.
        const int64_t splits = std::max(ref.stats[0].nsplit, ours.stats[0].nsplit);
        const int64_t may_move = flips > 0 ? 2 * flips + 2 * splits : 0;
        const int moved = moved_centroids(ref.centroids, ours.centroids, p.d);
        EXPECT_LE(moved, may_move)
                << "centroids that differ by more than fp32 rounding, with " << flips
                << " points assigned differently and " << splits << " splits";
    }
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

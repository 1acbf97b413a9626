#include <faiss_flash/engine/LloydDriver.h>

#include <cmath>
#include <cstdio>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/utils/utils.h>

#include <faiss_flash/engine/faiss_rules.h>

namespace faiss_flash {

LloydSchedule LloydSchedule::from(
        const faiss::ClusteringParameters& cp,
        const FlashParameters& fp) {
    LloydSchedule s;
    s.niter = cp.niter;
    s.nredo = cp.nredo;
    s.verbose = cp.verbose;
    s.spherical = cp.spherical;
    s.int_centroids = cp.int_centroids;
    s.frozen_centroids = cp.frozen_centroids;
    s.seed = cp.seed;
    s.tol = fp.tol;
    s.observer = fp.observer;
    return s;
}

namespace {

/// Empty clusters are rare: the driver fetches the centroids and splits on
/// the host only in the iterations that have some, so the common iteration
/// stays on the backend (no host round trip on the GPU).
std::vector<int> split_on_host(
        LloydBackend& backend,
        const LloydShape& shape,
        int64_t k_frozen,
        const std::vector<StepResult>& results) {
    std::vector<int> nsplit(shape.batch, 0);
    const int64_t kd = shape.k * shape.d;
    std::vector<float> weights(shape.batch * shape.k);
    std::vector<float> centroids(shape.batch * kd);
    backend.get_cluster_weights(weights.data());
    backend.get_centroids(centroids.data());
    for (int64_t b = 0; b < shape.batch; b++) {
        if (results[b].n_empty > 0) {
            nsplit[b] = split_empty_clusters(
                    shape.d,
                    shape.k,
                    shape.n,
                    k_frozen,
                    weights.data() + b * shape.k,
                    centroids.data() + b * kd);
        }
    }
    backend.set_centroids(centroids.data());
    return nsplit;
}

bool better(Metric metric, double obj, double best) {
    return metric == Metric::L2 ? obj < best : obj > best;
}

} // namespace

std::vector<double> run_lloyd(
        LloydBackend& backend,
        const LloydShape& shape,
        const LloydSchedule& schedule,
        int64_t n_provided,
        std::vector<std::vector<faiss::ClusteringIterationStats>>& stats) {
    const int64_t B = shape.batch;
    const int64_t kd = shape.k * shape.d;
    const int64_t k_frozen = schedule.frozen_centroids ? n_provided : 0;
    stats.resize(B);

    std::vector<double> final_obj(B, 0);
    std::vector<double> best_obj(
            B, shape.metric == Metric::L2 ? HUGE_VAL : -HUGE_VAL);
    std::vector<float> best_centroids;
    std::vector<std::vector<faiss::ClusteringIterationStats>> best_stats(B);
    std::vector<StepResult> results(B);

    double t0 = faiss::getmillisecs();
    double t_search_tot = 0;

    for (int redo = 0; redo < schedule.nredo; redo++) {
        if (schedule.verbose && schedule.nredo > 1) {
            printf("Outer iteration %d / %d\n", redo, schedule.nredo);
        }
        std::vector<int> rows =
                init_centroid_rows(shape.n, schedule.seed, redo);
        backend.init_centroids_from_points(rows.data(), n_provided);
        backend.post_process(schedule.spherical, schedule.int_centroids);

        std::vector<double> obj(B, 0);
        for (int it = 0; it < schedule.niter; it++) {
            StepTiming timing;
            backend.assign_update(k_frozen, results.data(), &timing);
            faiss::InterruptCallback::check();
            t_search_tot += timing.assign_s * 1000;

            int64_t n_empty = 0;
            for (const StepResult& r : results) {
                n_empty += r.n_empty;
            }
            std::vector<int> nsplit(B, 0);
            if (n_empty > 0) {
                nsplit = split_on_host(backend, shape, k_frozen, results);
            }

            double elapsed = (faiss::getmillisecs() - t0) / 1000.0;
            double total_obj = 0;
            for (int64_t b = 0; b < B; b++) {
                obj[b] = results[b].obj;
                total_obj += obj[b];
                stats[b].push_back(faiss::ClusteringIterationStats{
                        float(results[b].obj),
                        elapsed,
                        t_search_tot / 1000,
                        results[b].imbalance_factor,
                        nsplit[b]});
            }
            const faiss::ClusteringIterationStats& s = stats[0].back();
            if (schedule.verbose) {
                printf("  Iteration %d (%.2f s, search %.2f s): "
                       "objective=%g imbalance=%.3f nsplit=%d       \r",
                       it,
                       s.time,
                       s.time_search,
                       total_obj,
                       s.imbalance_factor,
                       nsplit[0]);
                fflush(stdout);
            }
            if (schedule.observer) {
                IterationProgress progress;
                progress.redo = redo;
                progress.nredo = schedule.nredo;
                progress.iteration = it;
                progress.niter = schedule.niter;
                progress.stats = s;
                progress.objective = total_obj;
                schedule.observer->on_iteration(progress);
            }

            backend.post_process(schedule.spherical, schedule.int_centroids);
            faiss::InterruptCallback::check();

            if (schedule.tol > 0) {
                const int64_t moving = shape.k - k_frozen;
                bool converged = true;
                for (const StepResult& r : results) {
                    converged &= moving == 0 ||
                            r.centroid_shift / moving <= schedule.tol;
                }
                if (converged) {
                    break;
                }
            }
        }
        if (schedule.verbose) {
            printf("\n");
        }
        final_obj = obj;

        if (schedule.nredo > 1) {
            std::vector<float> centroids(B * kd);
            backend.get_centroids(centroids.data());
            if (best_centroids.empty()) {
                best_centroids = centroids;
            }
            for (int64_t b = 0; b < B; b++) {
                if (better(shape.metric, obj[b], best_obj[b])) {
                    if (schedule.verbose) {
                        printf("Objective improved: keep new clusters\n");
                    }
                    std::copy(
                            centroids.begin() + b * kd,
                            centroids.begin() + (b + 1) * kd,
                            best_centroids.begin() + b * kd);
                    best_stats[b] = stats[b];
                    best_obj[b] = obj[b];
                }
            }
        }
    }

    if (schedule.nredo > 1) {
        backend.set_centroids(best_centroids.data());
        stats = best_stats;
        final_obj = best_obj;
    }
    return final_obj;
}

} // namespace faiss_flash

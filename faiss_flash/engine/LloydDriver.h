// The one Lloyd driver: init, iterations, objective, empty clusters, redo
// selection and stopping, for B independent problems, with FAISS 1.7.3's
// semantics. Backends (CPU, CUDA) only provide the heavy step.

#pragma once

#include <vector>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashParameters.h>
#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {

/// The iteration schedule: FAISS's parameters plus the optional early stop
/// and progress hook of FlashParameters.
struct LloydSchedule {
    int niter = 25;             ///< iterations per redo
    int nredo = 1;              ///< restarts; the best final objective wins
    bool verbose = false;       ///< print FAISS's per-iteration lines
    bool spherical = false;     ///< L2-renormalise centroids after each update
    bool int_centroids = false; ///< round centroids to integers
    bool frozen_centroids = false; ///< never move the provided centroids
    int64_t seed = 1234;        ///< seed of the initial centroid draw
    float tol = 0;              ///< see FlashParameters::tol; 0 = never stop early
    IterationObserver* observer = nullptr; ///< see FlashParameters::observer

    static LloydSchedule from(
            const faiss::ClusteringParameters& cp,
            const FlashParameters& fp);
};

/** Runs the Lloyd iterations on a backend whose points are bound.
 *
 * On input the backend's first n_provided centroids of each problem are the
 * caller's (set_centroids), the rest are drawn from the data as FAISS does.
 * On output the backend holds the final centroids (the best redo's).
 *
 * @param stats  one vector per problem; iterations are appended, and with
 *               nredo > 1 the vector is replaced by its state after the best
 *               redo, as faiss::Clustering does with iteration_stats.
 * @return       final objective of each problem (last iteration of the
 *               kept redo), B entries
 */
std::vector<double> run_lloyd(
        LloydBackend& backend,
        const LloydShape& shape,
        const LloydSchedule& schedule,
        int64_t n_provided,
        std::vector<std::vector<faiss::ClusteringIterationStats>>& stats);

} // namespace faiss_flash

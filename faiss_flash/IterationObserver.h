// faiss_flash::IterationObserver: a progress hook on the Lloyd iterations.
//
// FAISS reports progress only through its verbose lines (one line rewritten
// in place with '\r'). An IterationObserver set in FlashParameters::observer
// receives every iteration's statistics as they are produced, for progress
// bars, logs or early inspection; the verbose lines are unchanged by it.

#pragma once

#include <faiss/Clustering.h>

namespace faiss_flash {

/// What the engine knows after one Lloyd iteration.
struct IterationProgress {
    int redo = 0;      ///< 0-based restart index, < nredo
    int nredo = 1;     ///< restarts of this run
    int iteration = 0; ///< 0-based iteration index within the restart, < niter
    int niter = 0;     ///< iterations per restart (fewer run when tol stops early)
    /// FAISS's statistics of this iteration for the first problem of the
    /// batch (time and time_search: cumulative seconds since the
    /// iterations of the first restart began)
    faiss::ClusteringIterationStats stats{};
    /// objective summed over the problems of the batch in fp64, as the
    /// verbose line prints it (for one problem, stats.obj is its fp32
    /// rounding)
    double objective = 0;
};

/// Interface of the progress hook; the engine does not own it.
struct IterationObserver {
    virtual ~IterationObserver() = default;

    /// Called after every iteration, on the calling thread of train().
    /// An exception thrown here aborts the clustering and propagates.
    virtual void on_iteration(const IterationProgress& progress) = 0;
};

} // namespace faiss_flash

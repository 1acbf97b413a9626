// faiss_flash's k-means next to faiss::Clustering on the same data, seed and
// parameters: the runs, their per-iteration statistics, the side-by-side
// table and the per-iteration CSV. Used by `faiss-flash bench`,
// `faiss-flash demo` and the benchmark programs.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Clustering.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/cli/table.h>

namespace faiss_flash {
namespace cli {

/// One k-means run, of FAISS or of faiss_flash.
struct ClusteringRun {
    std::string engine; ///< "FAISS", or "faiss_flash" and its backend
    /// FAISS's statistics: time is cumulative since train() began (FAISS)
    /// or since the iterations began (faiss_flash)
    std::vector<faiss::ClusteringIterationStats> iteration_stats;
    std::vector<float> centroids; ///< k×d
    double train_s = 0; ///< wall time of train(), preprocessing included

    /// Time of iteration i in ms (the difference of cumulative times).
    double iteration_ms(size_t i) const;

    /** Mean time of one iteration in ms, over the iterations after the
     * first (FAISS's first iteration also carries its subsampling); the
     * first one alone when there is only one.
     */
    double ms_per_iteration() const;

    /// Objective of the last iteration.
    double final_objective() const;
};

/// The metric of the k-means index: inner product for spherical k-means
/// (as faiss.Kmeans), else L2.
faiss::MetricType clustering_metric(const faiss::ClusteringParameters& cp);

/// faiss::Clustering::train on x (n×d) into a flat index of
/// clustering_metric(cp).
ClusteringRun run_faiss_clustering(
        int64_t n,
        int d,
        int k,
        const float* x,
        const faiss::ClusteringParameters& cp);

/// FlashClustering::train, same conventions.
ClusteringRun run_flash_clustering(
        int64_t n,
        int d,
        int k,
        const float* x,
        const FlashClusteringParameters& params);

/// Both runs of one case.
struct KMeansComparison {
    std::string name; ///< the case, e.g. "k=256"
    ClusteringRun faiss;
    ClusteringRun flash;

    /// Largest |a - b| / |a| over the iterations both runs have, a being
    /// FAISS's objective.
    double max_objective_rel_diff() const;
};

/** Side-by-side summary, one row per case: time per iteration of both,
 * speedup, final objectives, largest per-iteration objective difference.
 */
Table comparison_table(const std::vector<KMeansComparison>& cases);

/** Per-iteration statistics of every run as CSV, with the header
 * `case,engine,iteration,objective,ms,imbalance,nsplit` (ms: that
 * iteration's own time).
 */
void write_iteration_csv(
        const std::string& path,
        const std::vector<KMeansComparison>& cases);

/** Nearest of the k centroids (k×d) for each of the n points of x,
 * computed by faiss_flash's engine on params' backend (ties to the lowest
 * index, as faiss::IndexFlat).
 */
std::vector<int64_t> nearest_centroid_labels(
        int64_t n,
        int64_t d,
        const float* x,
        int64_t k,
        const float* centroids,
        faiss::MetricType metric,
        const FlashParameters& params);

/// "<CPU model>, <T> OpenMP threads", for the headers of reports.
std::string machine_description();

} // namespace cli
} // namespace faiss_flash

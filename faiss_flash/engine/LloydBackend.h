// The interface between the Lloyd driver (host logic written once: init,
// iterations, objective, empty clusters, stopping, FAISS semantics) and the
// backends that do the heavy step (CPU now; CUDA behind the same calls).

#pragma once

#include <cstdint>

namespace faiss_flash {

/// Distance of the assignment: the two metrics faiss::Clustering supports
/// through IndexFlatL2 / IndexFlatIP.
enum class Metric {
    L2,           ///< nearest = smallest squared L2 distance
    InnerProduct, ///< nearest = largest inner product
};

/// Shape of B independent k-means problems sharing n, d and k.
struct LloydShape {
    int64_t batch = 1; ///< B: number of independent problems
    int64_t n = 0;     ///< points per problem
    int64_t d = 0;     ///< dimension
    int64_t k = 0;     ///< centroids per problem
    Metric metric = Metric::L2;
};

/// What one fused assign+update step reports for one problem.
struct StepResult {
    /// Sum over points of the distance (L2) or inner product (IP) to the
    /// assigned centroid, measured before the update, as FAISS's obj.
    double obj = 0;
    /// k * sum(count_c^2) / n^2 with unweighted counts, as FAISS.
    double imbalance_factor = 0;
    /// Non-frozen clusters whose total weight is zero after the update.
    int64_t n_empty = 0;
    /// Sum over non-frozen centroids of the squared L2 move made by the
    /// update (before splits and post-processing): the stopping statistic.
    double centroid_shift = 0;
};

/// Wall-clock split of one step, in seconds, for FAISS's time_search.
struct StepTiming {
    double assign_s = 0;
    double update_s = 0;
};

/** A Lloyd backend owns the points and centroids of B problems.
 *
 * Host pointers everywhere in this interface: the data layout is row-major
 * B×N×D for points, B×N for weights, B×K×D for centroids, B×K for cluster
 * weights. A backend may keep them elsewhere (GPU memory) between calls.
 */
class LloydBackend {
   public:
    virtual ~LloydBackend() = default;

    virtual const char* name() const = 0;

    /// Binds the points (and optional weights, nullptr = all 1) that every
    /// following call works on. The host arrays must outlive the backend's
    /// use of them (the CPU backend does not copy).
    virtual void bind_points(
            const LloydShape& shape,
            const float* x,
            const float* weights) = 0;

    virtual void set_centroids(const float* centroids) = 0;

    /// For every problem, centroid i <- point rows[i], for first <= i < k
    /// (rows holds at least k entries, each in [0, n)).
    virtual void init_centroids_from_points(const int* rows, int64_t first) = 0;

    virtual void get_centroids(float* centroids) = 0;

    /** The fused step. Assigns every point to its nearest centroid (ties to
     * the lowest index), then replaces each centroid c >= k_frozen by the
     * (weighted) mean of its points, computed as FAISS does; a non-frozen
     * centroid with no weight becomes all zeros (the driver splits it).
     */
    virtual void assign_update(
            int64_t k_frozen,
            StepResult* results,
            StepTiming* timing) = 0;

    /// Per-cluster total weight (FAISS's hassign) of the last step, B×K.
    virtual void get_cluster_weights(float* hassign) = 0;

    /// FAISS's post_process_centroids on all centroids: L2 renormalisation
    /// (spherical), then rounding to integers.
    virtual void post_process(bool spherical, bool round_to_int) = 0;

    /// Assignment only, to the current centroids: B×N labels and distances
    /// (L2: squared distance; IP: inner product). Either may be nullptr.
    virtual void assign(int64_t* labels, float* distances) = 0;
};

} // namespace faiss_flash

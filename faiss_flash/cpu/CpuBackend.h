// The CPU backend: fused blocked assignment (assign_tile) + sort-inverse
// update (centroid_update), OpenMP across cores. Results do not depend on
// the thread count.

#pragma once

#include <vector>

#include <faiss_flash/cpu/assign_tile.h>
#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {
namespace cpu {

class CpuBackend : public LloydBackend {
   public:
    /// num_threads = 0: omp_get_max_threads().
    explicit CpuBackend(int num_threads = 0);

    const char* name() const override {
        return "cpu";
    }

    void bind_points(const LloydShape& shape, const float* x, const float* weights)
            override;
    void set_centroids(const float* centroids) override;
    void init_centroids_from_points(const int* rows, int64_t first) override;
    void get_centroids(float* centroids) override;
    void assign_update(int64_t k_frozen, StepResult* results, StepTiming* timing)
            override;
    void get_cluster_weights(float* hassign) override;
    void post_process(bool spherical, bool round_to_int) override;
    void assign(int64_t* labels, float* distances) override;

   private:
    const float* points(int64_t b) const {
        return x_ + b * shape_.n * shape_.d;
    }
    /// Assigns problem b into labels_/distances_; returns the objective.
    double assign_problem(int64_t b);

    int num_threads_;
    LloydShape shape_;
    const float* x_ = nullptr;
    const float* weights_ = nullptr;
    std::vector<float> x_norms_;         // B×N, L2 only
    std::vector<float> centroids_;       // B×K×D
    std::vector<float> cluster_weights_; // B×K
    std::vector<int64_t> counts_;        // K
    std::vector<int64_t> labels_;        // N
    std::vector<float> distances_;       // N
    PackedCentroids packed_;
};

} // namespace cpu
} // namespace faiss_flash

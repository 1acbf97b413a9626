#include <faiss_flash/cpu/CpuBackend.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <omp.h>

#include <faiss/utils/distances.h>

#include <faiss_flash/cpu/centroid_update.h>
#include <faiss_flash/engine/faiss_rules.h>

namespace faiss_flash {
namespace cpu {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
}

/// Sum of n floats in double, in a fixed order whatever the thread count:
/// fixed-size slices summed in parallel, then the slices in order.
double deterministic_sum(const float* v, int64_t n, int num_threads) {
    constexpr int64_t kSlice = 1 << 16;
    const int64_t n_slices = (n + kSlice - 1) / kSlice;
    std::vector<double> partial(n_slices, 0.0);
#pragma omp parallel for num_threads(num_threads)
    for (int64_t s = 0; s < n_slices; s++) {
        double acc = 0;
        for (int64_t i = s * kSlice; i < std::min(n, (s + 1) * kSlice); i++) {
            acc += v[i];
        }
        partial[s] = acc;
    }
    double total = 0;
    for (double p : partial) {
        total += p;
    }
    return total;
}

} // namespace

CpuBackend::CpuBackend(int num_threads)
        : num_threads_(num_threads > 0 ? num_threads : omp_get_max_threads()) {}

void CpuBackend::bind_points(
        const LloydShape& shape,
        const float* x,
        const float* weights) {
    shape_ = shape;
    x_ = x;
    weights_ = weights;
    x_norms_.clear();
    if (shape.metric == Metric::L2) {
        // FAISS's own norm routine, so the L2 formula matches its search.
        x_norms_.resize(shape.batch * shape.n);
        faiss::fvec_norms_L2sqr(
                x_norms_.data(), x, shape.d, shape.batch * shape.n);
    }
    centroids_.assign(shape.batch * shape.k * shape.d, 0.0f);
    cluster_weights_.assign(shape.batch * shape.k, 0.0f);
    counts_.assign(shape.k, 0);
    labels_.assign(shape.n, 0);
    distances_.assign(shape.n, 0.0f);
}

void CpuBackend::set_centroids(const float* centroids) {
    std::copy(centroids, centroids + centroids_.size(), centroids_.begin());
}

void CpuBackend::init_centroids_from_points(const int* rows, int64_t first) {
    const int64_t d = shape_.d;
    for (int64_t b = 0; b < shape_.batch; b++) {
        float* c = centroids_.data() + b * shape_.k * d;
        for (int64_t i = first; i < shape_.k; i++) {
            std::memcpy(c + i * d, points(b) + int64_t(rows[i]) * d,
                        sizeof(float) * d);
        }
    }
}

void CpuBackend::get_centroids(float* centroids) {
    std::copy(centroids_.begin(), centroids_.end(), centroids);
}

void CpuBackend::get_cluster_weights(float* hassign) {
    std::copy(cluster_weights_.begin(), cluster_weights_.end(), hassign);
}

double CpuBackend::assign_problem(int64_t b) {
    const int64_t kd = shape_.k * shape_.d;
    pack_centroids(centroids_.data() + b * kd, shape_.k, shape_.d,
                   shape_.metric, packed_);
    assign_points(
            points(b),
            x_norms_.empty() ? nullptr : x_norms_.data() + b * shape_.n,
            shape_.n,
            packed_,
            shape_.metric,
            num_threads_,
            labels_.data(),
            distances_.data());
    return deterministic_sum(distances_.data(), shape_.n, num_threads_);
}

void CpuBackend::assign_update(
        int64_t k_frozen,
        StepResult* results,
        StepTiming* timing) {
    const int64_t kd = shape_.k * shape_.d;
    for (int64_t b = 0; b < shape_.batch; b++) {
        auto t0 = std::chrono::steady_clock::now();
        results[b].obj = assign_problem(b);
        auto t1 = std::chrono::steady_clock::now();
        UpdateStats u = update_centroids(
                points(b),
                weights_ ? weights_ + b * shape_.n : nullptr,
                shape_.n,
                shape_.d,
                shape_.k,
                k_frozen,
                labels_.data(),
                num_threads_,
                centroids_.data() + b * kd,
                cluster_weights_.data() + b * shape_.k,
                counts_.data());
        results[b].imbalance_factor =
                imbalance_factor(shape_.k, counts_.data());
        results[b].n_empty = u.n_empty;
        results[b].centroid_shift = u.centroid_shift;
        if (timing) {
            timing->assign_s += std::chrono::duration<double>(t1 - t0).count();
            timing->update_s += seconds_since(t1);
        }
    }
}

void CpuBackend::post_process(bool spherical, bool round_to_int) {
    post_process_centroids(shape_.d, shape_.batch * shape_.k, spherical,
                           round_to_int, centroids_.data());
}

void CpuBackend::assign(int64_t* labels, float* distances) {
    for (int64_t b = 0; b < shape_.batch; b++) {
        assign_problem(b);
        if (labels) {
            std::copy(labels_.begin(), labels_.end(), labels + b * shape_.n);
        }
        if (distances) {
            std::copy(distances_.begin(), distances_.end(),
                      distances + b * shape_.n);
        }
    }
}

} // namespace cpu
} // namespace faiss_flash

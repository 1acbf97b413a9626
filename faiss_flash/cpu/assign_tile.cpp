#include <faiss_flash/cpu/assign_tile.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>

#include <omp.h>

#include <faiss/utils/distances.h>

namespace faiss_flash {
namespace cpu {

namespace {

constexpr int kG = AssignTilePolicy::kGroupCentroids;
constexpr int kP = AssignTilePolicy::kPanelPoints;
constexpr int64_t kMaxBlockPoints = 64 * kP; // assign_tile.inl's panel cap

AssignBlockFn pick_assign_block() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return assign_block_avx2;
    }
#endif
    return assign_block_generic;
}

struct FreeDeleter {
    void operator()(float* p) const {
        std::free(p);
    }
};

} // namespace

int64_t block_points(int64_t d) {
    int64_t rows = int64_t(AssignTilePolicy::kPointBlockBytes) /
            (int64_t(sizeof(float)) * d);
    rows = rows / kP * kP;
    return std::clamp<int64_t>(rows, kP, kMaxBlockPoints);
}

void pack_centroids(
        const float* centroids,
        int64_t k,
        int64_t d,
        Metric metric,
        PackedCentroids& packed) {
    packed.k = k;
    packed.d = d;
    packed.n_groups = (k + kG - 1) / kG;
    packed.data.assign(packed.n_groups * kG * d, 0.0f);
    packed.bias.assign(
            packed.n_groups * kG, std::numeric_limits<float>::infinity());
    for (int64_t c = 0; c < k; c++) {
        float* dst = packed.data.data() + (c / kG) * d * kG + c % kG;
        for (int64_t j = 0; j < d; j++) {
            dst[j * kG] = centroids[c * d + j];
        }
    }
    if (metric == Metric::L2) {
        faiss::fvec_norms_L2sqr(packed.bias.data(), centroids, d, k);
    } else {
        std::fill(packed.bias.begin(), packed.bias.begin() + k, 0.0f);
    }
}

void assign_points(
        const float* x,
        const float* x_norms,
        int64_t n,
        const PackedCentroids& centroids,
        Metric metric,
        int num_threads,
        int64_t* labels,
        float* distances) {
    static const AssignBlockFn assign_block = pick_assign_block();
    const int64_t d = centroids.d;
    const int64_t rows_per_block = block_points(d);
    const int64_t n_blocks = (n + rows_per_block - 1) / rows_per_block;
    const int64_t scratch_floats = (rows_per_block * d + 7) / 8 * 8;

    // One 32-byte aligned scratch slice per thread, allocated before the
    // parallel region so an allocation failure is an exception, not a crash.
    const size_t bytes = sizeof(float) * scratch_floats * num_threads;
    std::unique_ptr<float, FreeDeleter> scratch(
            static_cast<float*>(std::aligned_alloc(32, bytes)));
    if (!scratch) {
        throw std::bad_alloc();
    }

    // Each block's result depends on its points only, so the schedule does
    // not change the output: dynamic balances noisy cores.
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        const int64_t r0 = blk * rows_per_block;
        const int64_t rows = std::min(rows_per_block, n - r0);
        assign_block(
                x + r0 * d,
                x_norms ? x_norms + r0 : nullptr,
                rows,
                centroids,
                metric,
                scratch.get() + omp_get_thread_num() * scratch_floats,
                labels + r0,
                distances ? distances + r0 : nullptr);
    }
}

} // namespace cpu
} // namespace faiss_flash

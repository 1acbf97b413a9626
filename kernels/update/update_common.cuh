// What both update strategies share (see update_centroids.cuh): the fixed
// order reductions, the finishing arithmetic of a cluster (mean, weight,
// shift), the kernel that adds a cluster's partial sums in order and
// finishes it, the per-problem statistics, and the device limits their
// launch helpers plan with. Included by the strategies' .cu files only.

#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <faiss/impl/FaissAssert.h>

#include "../block/strided_sum.cuh"
#include "../util/launch_check.h"
#include "../warp/warp_reduce.cuh"
#include "update_centroids.cuh"

namespace faiss_flash {
namespace kernels {

constexpr int kWarpsPerBlock = 8;
/// Dimensions per thread in one pass of cluster_means_kernel: independent
/// fp64 chains over the cluster's partial rows.
constexpr int kMeanDimsPerThread = 4;
/// Partial rows whose values a thread of cluster_means_kernel loads before
/// it adds any of them.
constexpr int kMeanRowsInFlight = 8;
/// Threads of problem_stats_kernel, one block per problem, and the
/// objective partials each of them loads before adding any.
constexpr int kStatsThreads = 512;
constexpr int kStatsLoadsInFlight = 8;

/// The limits of a GPU that the launch helpers plan with.
struct DeviceLimits {
    int multiprocessors;
    size_t smem_per_block;          ///< opt-in shared memory of one block
    size_t smem_per_multiprocessor;
    size_t smem_reserved_per_block; ///< taken by the system from each resident block
};

/// The current GPU's limits, queried once per device: a device query costs
/// more than a small problem's whole update.
inline DeviceLimits device_limits() {
    static std::mutex mutex;
    static std::map<int, DeviceLimits> known;
    int device = 0;
    FAISS_THROW_IF_NOT_MSG(cudaGetDevice(&device) == cudaSuccess, "centroid update: no current GPU");
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = known.find(device);
    if (it != known.end()) {
        return it->second;
    }
    int sms = 0, per_block = 0, per_sm = 0, reserved = 0;
    const bool ok = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) == cudaSuccess &&
            cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
            cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) == cudaSuccess &&
            cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device) == cudaSuccess;
    FAISS_THROW_IF_NOT_FMT(ok, "centroid update: cannot query the limits of GPU %d", device);
    const DeviceLimits limits{sms, size_t(per_block), size_t(per_sm), size_t(reserved)};
    known[device] = limits;
    return limits;
}

inline unsigned blocks_for(int64_t items, int threads) {
    return unsigned(std::min<int64_t>((items + threads - 1) / threads, int64_t(1) << 20));
}

/// Blocks of `threads` that fill the current GPU about once (2048 threads
/// per SM): the grid of a loop over work that only the device has counted.
inline unsigned one_wave(int threads) {
    return unsigned(device_limits().multiprocessors * std::max(1, 2048 / threads));
}

/// Calls launch(T()) with T the storage type of the points (a value as the
/// type's tag).
template <typename Launch>
void with_point_type(PointType t, Launch&& launch) {
    switch (t) {
        case PointType::F16:
            launch(__half());
            break;
        case PointType::BF16:
            launch(__nv_bfloat16());
            break;
        default:
            launch(float());
    }
}

/// p must be aligned to the vector accesses: 16 bytes, or 4·kCount if less.
template <int kCount>
__device__ __forceinline__ void store_floats(float* p, const float (&v)[kCount]) {
    if constexpr (kCount % 4 == 0) {
#pragma unroll
        for (int i = 0; i < kCount; i += 4) {
            *reinterpret_cast<float4*>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
        }
    } else if constexpr (kCount == 2) {
        *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
    } else {
        static_assert(kCount == 1, "runs of 1, 2 or a multiple of 4 coordinates");
        p[0] = v[0];
    }
}

template <int kCount>
__device__ __forceinline__ void load_floats(const float* p, float (&v)[kCount]) {
    if constexpr (kCount % 4 == 0) {
#pragma unroll
        for (int i = 0; i < kCount; i += 4) {
            const float4 f = *reinterpret_cast<const float4*>(p + i);
            v[i] = f.x;
            v[i + 1] = f.y;
            v[i + 2] = f.z;
            v[i + 3] = f.w;
        }
    } else if constexpr (kCount == 2) {
        const float2 f = *reinterpret_cast<const float2*>(p);
        v[0] = f.x;
        v[1] = f.y;
    } else {
        static_assert(kCount == 1, "runs of 1, 2 or a multiple of 4 coordinates");
        v[0] = p[0];
    }
}

/// A coordinate of an updated centroid from the cluster's weighted sum and
/// its weight as stored (fp32): 0 for a cluster of no weight. Its squared
/// move from `old` is added to shift.
__device__ __forceinline__ float updated_coordinate(double sum, float weight, float old, double& shift) {
    const float updated = weight == 0 ? 0.0f : float(sum / weight);
    const double delta = double(updated) - old;
    shift = __fma_rn(delta, delta, shift);
    return updated;
}

/// One cluster's partial sums, added in row order: row r holds the
/// weighted sums sums[r·sum_stride + j] (j < d), its weight
/// weights[r·stride] and, where the rows count points, counts[r·stride].
template <typename T>
struct PartialRows {
    const T* sums;
    int64_t sum_stride;
    const T* weights;
    const uint32_t* counts;
    int64_t stride;
    int64_t rows;
};

/** Finishes clusters from their partial rows, by a team of kTeam threads
 * per cluster (a warp, or the whole block). Partials says which clusters
 * (size(), cluster(i)) and their rows (rows(q), a PartialRows<Value>). Per
 * cluster: its weight (fp64, lane-strided over the rows, then warp_sum),
 * its point count where cluster_counts is given (likewise, exact), its
 * mean (fp64 over the rows in order; frozen: untouched) and its shift, the
 * sum of its coordinates' squared moves: each thread adds its own
 * coordinates in order, then warp_sum (and, for a block, a fixed order
 * over the warps). A cluster's arithmetic does not depend on the team that
 * takes it, so neither the order of the clusters nor the grid reaches the
 * results.
 */
template <int kTeam, typename Partials>
__global__ void __launch_bounds__(kTeam == 32 ? 32 * kWarpsPerBlock : kTeam) cluster_means_kernel(
        UpdateArgs args,
        Partials partials,
        double* cluster_shift,
        int64_t* cluster_counts) {
    constexpr int kTeamsPerBlock = kTeam == 32 ? kWarpsPerBlock : 1;
    constexpr int kPassDims = kTeam * kMeanDimsPerThread;
    using Value = typename Partials::Value;
    __shared__ double s_warp_shift[kTeam / 32];
    const int t = threadIdx.x % kTeam;
    const int team = threadIdx.x / kTeam;
    const int64_t d = args.d;
    const int64_t listed = partials.size();
    for (int64_t i = blockIdx.x * int64_t(kTeamsPerBlock) + team; i < listed;
         i += int64_t(gridDim.x) * kTeamsPerBlock) {
        const uint32_t q = partials.cluster(uint32_t(i));
        const PartialRows<Value> rows = partials.rows(q);
        double weight_sum = 0;
        unsigned long long count = 0;
        for (int64_t r = t % 32; r < rows.rows; r += 32) {
            weight_sum += rows.weights[r * rows.stride];
            if (cluster_counts) {
                count += rows.counts[r * rows.stride];
            }
        }
        // The mean divides by the weight as stored, in fp32.
        const float weight = float(warp_sum(weight_sum));
        if (t == 0) {
            args.cluster_weights[q] = weight;
        }
        if (cluster_counts) {
            count = warp_sum(count);
            if (t == 0) {
                cluster_counts[q] = int64_t(count);
            }
        }
        if (q % uint32_t(args.k) < args.k_frozen) {
            if (t == 0) {
                cluster_shift[q] = 0;
            }
            continue;
        }
        float* centroid = args.centroids + q * d;
        double shift = 0;
        for (int64_t pass = 0; pass < d; pass += kPassDims) {
            // Dimensions past d read the last one, and are not written:
            // unconditional loads let the compiler overlap them.
            int64_t column[kMeanDimsPerThread];
            float old[kMeanDimsPerThread];
#pragma unroll
            for (int j = 0; j < kMeanDimsPerThread; j++) {
                column[j] = min(pass + t + j * kTeam, d - 1);
                old[j] = centroid[column[j]];
            }
            double sum[kMeanDimsPerThread] = {};
            for (int64_t r = 0; r < rows.rows; r += kMeanRowsInFlight) {
                // Rows past the last read the last one, and are not added.
                Value v[kMeanRowsInFlight][kMeanDimsPerThread];
#pragma unroll
                for (int c = 0; c < kMeanRowsInFlight; c++) {
                    const Value* partial = rows.sums + min(r + c, rows.rows - 1) * rows.sum_stride;
#pragma unroll
                    for (int j = 0; j < kMeanDimsPerThread; j++) {
                        v[c][j] = partial[column[j]];
                    }
                }
#pragma unroll
                for (int c = 0; c < kMeanRowsInFlight; c++) {
                    if (r + c < rows.rows) {
#pragma unroll
                        for (int j = 0; j < kMeanDimsPerThread; j++) {
                            sum[j] += v[c][j];
                        }
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < kMeanDimsPerThread; j++) {
                const int64_t dim = pass + t + j * kTeam;
                if (dim < d) {
                    centroid[dim] = updated_coordinate(sum[j], weight, old[j], shift);
                }
            }
        }
        shift = warp_sum(shift);
        if constexpr (kTeam > 32) {
            if (t % 32 == 0) {
                s_warp_shift[t / 32] = shift;
            }
            __syncthreads();
            if (t == 0) {
                for (int w = 1; w < kTeam / 32; w++) {
                    shift += s_warp_shift[w];
                }
            }
            __syncthreads();
        }
        if (t == 0) {
            cluster_shift[q] = shift;
        }
    }
}

/** cluster_means_kernel for at most max_clusters clusters (only the device
 * may know how many): teams for as many, at most about one wave of them,
 * each of enough threads for kMeanDimsPerThread dimensions a thread, up to
 * a block. cluster_counts: nullptr where the counts are known otherwise.
 */
template <typename Partials>
void launch_cluster_means(
        const UpdateArgs& args,
        const Partials& partials,
        int64_t max_clusters,
        double* cluster_shift,
        int64_t* cluster_counts,
        cudaStream_t stream) {
    const auto launch = [&](auto team) {
        constexpr int kTeam = decltype(team)::value;
        constexpr int kTeamsPerBlock = kTeam == 32 ? kWarpsPerBlock : 1;
        constexpr int kThreads = kTeam * kTeamsPerBlock;
        const unsigned blocks = std::min(blocks_for(max_clusters, kTeamsPerBlock), one_wave(kThreads));
        cluster_means_kernel<kTeam><<<blocks, kThreads, 0, stream>>>(args, partials, cluster_shift, cluster_counts);
        check_launch("cluster_means");
    };
    const int64_t mean_threads = (args.d + kMeanDimsPerThread - 1) / kMeanDimsPerThread;
    if (mean_threads <= 32) {
        launch(std::integral_constant<int, 32>());
    } else if (mean_threads <= 64) {
        launch(std::integral_constant<int, 64>());
    } else if (mean_threads <= 128) {
        launch(std::integral_constant<int, 128>());
    } else {
        launch(std::integral_constant<int, 256>());
    }
}

/** One block per problem, fixed-order reductions over its clusters, and
 * over its objective partials where args.objective has them (the step's
 * objective rides on this launch instead of a kernel of its own).
 * counts(q): the points of cluster q (a functor: each strategy holds them
 * its own way).
 */
template <typename Counts>
__global__ void __launch_bounds__(kStatsThreads)
        problem_stats_kernel(UpdateArgs args, Counts counts, const double* cluster_shift) {
    __shared__ double s_shift[kStatsThreads], s_sq[kStatsThreads], s_obj[kStatsThreads];
    __shared__ long long s_empty[kStatsThreads];
    const int64_t b = blockIdx.x;
    const ObjectivePartials& objective = args.objective;
    const double obj = objective.values == nullptr
            ? 0.0
            : strided_sum<kStatsThreads, kStatsLoadsInFlight>(objective.values + b * objective.per_problem,
                                                             objective.per_problem, threadIdx.x);
    double shift = 0, sq = 0;
    long long empty = 0;
    for (int64_t c = threadIdx.x; c < args.k; c += kStatsThreads) {
        const int64_t q = b * args.k + c;
        const double count = double(counts(q));
        sq += count * count;
        empty += c >= args.k_frozen && args.cluster_weights[q] == 0;
    }
    for (int64_t c = threadIdx.x; c < args.k; c += kStatsThreads) {
        shift += cluster_shift[b * args.k + c]; // frozen ones are 0
    }
    s_shift[threadIdx.x] = shift;
    s_sq[threadIdx.x] = sq;
    s_obj[threadIdx.x] = obj;
    s_empty[threadIdx.x] = empty;
    __syncthreads();
    for (int stride = kStatsThreads / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            s_shift[threadIdx.x] += s_shift[threadIdx.x + stride];
            s_sq[threadIdx.x] += s_sq[threadIdx.x + stride];
            s_obj[threadIdx.x] += s_obj[threadIdx.x + stride];
            s_empty[threadIdx.x] += s_empty[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double n = double(args.n);
        args.stats[b] = UpdateStats{s_shift[0], s_sq[0] * args.k / (n * n), s_empty[0]};
        if (objective.values != nullptr) {
            objective.objectives[b] = (objective.offsets ? objective.offsets[b] : 0.0) + s_obj[0];
        }
    }
}

template <typename Counts>
void launch_problem_stats(const UpdateArgs& args, Counts counts, const double* cluster_shift, cudaStream_t stream) {
    problem_stats_kernel<<<unsigned(args.batch), kStatsThreads, 0, stream>>>(args, counts, cluster_shift);
    check_launch("problem_stats");
}

} // namespace kernels
} // namespace faiss_flash

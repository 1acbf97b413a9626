// Sort-inverse update kernels and their launch helper (see .cuh).

#include "sort_inverse_update.cuh"
#include "../util/launch_check.h"
#include "../util/point_load.cuh"

#include <algorithm>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

/// Sorted points per chunk: a warp's share of one cluster. Long enough that
/// the per-chunk partial rows stay few, short enough to spread a hot
/// cluster over many warps.
constexpr int kChunkRows = 64;
constexpr int kWarpsPerBlock = 8;
/// Rows of a chunk whose loads a lane issues before it adds any of them:
/// one row at a time leaves the chunk sum latency bound.
constexpr int kRowsInFlight = 8;
/// Dimensions per thread in one pass of cluster_means_kernel: independent
/// fp64 chains over the cluster's chunks.
constexpr int kMeanDimsPerThread = 4;

/// Workspace carve-up, the same on host (sizes) and device (pointers).
struct Workspace {
    uint32_t* keys_in;
    uint32_t* keys_out;
    uint32_t* rows_in;
    uint32_t* rows_out;
    int64_t* offsets;      // B·K + 1: first sorted position of each cluster
    int64_t* chunk_count;  // B·K + 1: chunks of each cluster (last: 0)
    int64_t* chunk_start;  // B·K + 1: exclusive scan of chunk_count
    float* partials;       // max_chunks × d
    float* partial_weights; // max_chunks
    double* cluster_shift; // B·K
    void* sort_temp;
    size_t sort_temp_bytes;
    void* scan_temp;
    size_t scan_temp_bytes;
    int64_t max_chunks;
    size_t total;

    Workspace(void* base, int64_t batch, int64_t n, int64_t k, int64_t d) {
        const int64_t rows = batch * n, clusters = batch * k;
        // Each cluster has at most count / kChunkRows + 1 chunks.
        max_chunks = (rows + kChunkRows - 1) / kChunkRows + clusters;
        size_t off = 0;
        auto take = [&](size_t bytes) {
            void* p = base ? static_cast<char*>(base) + off : nullptr;
            off += (bytes + 255) / 256 * 256;
            return p;
        };
        keys_in = static_cast<uint32_t*>(take(sizeof(uint32_t) * rows));
        keys_out = static_cast<uint32_t*>(take(sizeof(uint32_t) * rows));
        rows_in = static_cast<uint32_t*>(take(sizeof(uint32_t) * rows));
        rows_out = static_cast<uint32_t*>(take(sizeof(uint32_t) * rows));
        offsets = static_cast<int64_t*>(take(sizeof(int64_t) * (clusters + 1)));
        chunk_count = static_cast<int64_t*>(take(sizeof(int64_t) * (clusters + 1)));
        chunk_start = static_cast<int64_t*>(take(sizeof(int64_t) * (clusters + 1)));
        partials = static_cast<float*>(take(sizeof(float) * max_chunks * d));
        partial_weights = static_cast<float*>(take(sizeof(float) * max_chunks));
        cluster_shift = static_cast<double*>(take(sizeof(double) * clusters));
        sort_temp_bytes = 0;
        cub::DeviceRadixSort::SortPairs(
                nullptr, sort_temp_bytes, keys_in, keys_out, rows_in, rows_out, rows, 0, 32);
        sort_temp = take(sort_temp_bytes);
        scan_temp_bytes = 0;
        cub::DeviceScan::ExclusiveSum(nullptr, scan_temp_bytes, chunk_count, chunk_start, clusters + 1);
        scan_temp = take(scan_temp_bytes);
        total = off;
    }
};

int key_bits(int64_t clusters) {
    int bits = 1;
    while ((int64_t(1) << bits) < clusters) {
        bits++;
    }
    return bits;
}

unsigned blocks_for(int64_t items, int threads) {
    return unsigned(std::min<int64_t>((items + threads - 1) / threads, int64_t(1) << 20));
}

/// B·N and B·K are < 2^32 (checked at launch), so 32-bit arithmetic is
/// exact here and avoids a 64-bit division per point.
__global__ void make_keys_kernel(const int32_t* labels, uint32_t n, uint32_t k, int64_t rows, uint32_t* keys, uint32_t* row_ids) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows; i += int64_t(gridDim.x) * blockDim.x) {
        keys[i] = uint32_t(i) / n * k + uint32_t(labels[i]);
        row_ids[i] = uint32_t(i);
    }
}

/// offsets[q] = first sorted position with key >= q (binary search), and
/// the number of chunks of cluster q - 1.
__global__ void segment_offsets_kernel(const uint32_t* sorted_keys, int64_t rows, int64_t clusters, int64_t* offsets, int64_t* chunk_count) {
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q <= clusters; q += int64_t(gridDim.x) * blockDim.x) {
        auto lower_bound = [&](int64_t key) {
            int64_t lo = 0, hi = rows;
            while (lo < hi) {
                const int64_t mid = (lo + hi) / 2;
                if (sorted_keys[mid] < key) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return lo;
        };
        const int64_t first = lower_bound(q);
        offsets[q] = first;
        chunk_count[q] = q < clusters ? (lower_bound(q + 1) - first + kChunkRows - 1) / kChunkRows : 0;
    }
}

/// The cluster owning chunk g: the last q in [0, clusters) with
/// chunk_start[q] <= g (empty clusters own no chunk). The warp probes 32
/// evenly spaced entries per step, so the chain of dependent loads is
/// log32(clusters) long rather than log2(clusters).
__device__ int64_t owning_cluster(const int64_t* chunk_start, int64_t clusters, int64_t g, int lane) {
    int64_t lo = 0, hi = clusters; // chunk_start[lo] <= g; the answer is in [lo, hi)
    while (hi - lo > 1) {
        const int64_t stride = (hi - lo + 31) >> 5;
        const int64_t probe = lo + (lane + 1) * stride;
        const bool at_or_before = probe < hi && chunk_start[probe] <= g;
        // chunk_start is non-decreasing: the lanes at or before g are a prefix.
        const int count = __popc(__ballot_sync(0xffffffffu, at_or_before));
        hi = min(hi, lo + (count + 1) * stride);
        lo += count * stride;
    }
    return lo;
}

/// p must be aligned to the vector stores: 16 bytes, or 4·kCount if less.
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

/// One warp per chunk: fp32 sum of its points (sorted = index order) into
/// one partial row, acc = fma(x, w, acc) per row in order. Each lane covers
/// kVec contiguous dimensions per pass, loaded in one access (the launch
/// checks the alignment); kVec = 1 is the general path.
template <typename T, int kVec>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) chunk_sums_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    static_assert(kChunkRows == 64, "a lane holds two of the chunk's entries");
    static_assert(32 % kRowsInFlight == 0, "a group of rows sits in one half of the chunk");
    constexpr int kPassDims = 32 * kVec;
    const int lane = threadIdx.x % 32;
    const int64_t g = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
    if (g >= ws.chunk_start[clusters]) {
        return;
    }
    const int64_t q = owning_cluster(ws.chunk_start, clusters, g, lane);
    const int64_t p0 = ws.offsets[q] + (g - ws.chunk_start[q]) * kChunkRows;
    const int count = int(min(ws.offsets[q + 1] - p0, int64_t(kChunkRows)));

    // Lane i holds the chunk's entries i and 32 + i; rows are broadcast
    // from there, so no load waits on another inside the row loop.
    uint32_t row_low = 0, row_high = 0;
    float w_low = 0, w_high = 0;
    if (lane < count) {
        row_low = ws.rows_out[p0 + lane];
        w_low = args.weights ? args.weights[row_low] : 1.0f;
    }
    if (32 + lane < count) {
        row_high = ws.rows_out[p0 + 32 + lane];
        w_high = args.weights ? args.weights[row_high] : 1.0f;
    }

    const T* x = static_cast<const T*>(args.x);
    const int64_t d = args.d;
    float* out = ws.partials + g * d;
    for (int64_t pass = 0; pass < d; pass += kPassDims) {
        const int64_t dim = pass + lane * kVec;
        // Every load is issued, from a clamped row and dimension where the
        // chunk or the row ends (repeats, not added): predicated loads
        // would make the compiler copy each result out and serialize on it.
        const int64_t column = min(dim, d - kVec);
        float acc[kVec] = {};
        for (int r0 = 0; r0 < count; r0 += kRowsInFlight) {
            const bool high = r0 >= 32;
            PointVector<T, kVec> loaded[kRowsInFlight];
            float w[kRowsInFlight];
#pragma unroll
            for (int u = 0; u < kRowsInFlight; u++) {
                const int src_lane = min(r0 + u, count - 1) % 32;
                const uint32_t row = __shfl_sync(0xffffffffu, high ? row_high : row_low, src_lane);
                w[u] = __shfl_sync(0xffffffffu, high ? w_high : w_low, src_lane);
                loaded[u].load(x + row * args.ldx + column);
            }
#pragma unroll
            for (int u = 0; u < kRowsInFlight; u++) {
                if (r0 + u < count && dim < d) {
                    float v[kVec];
                    loaded[u].to_float(v);
#pragma unroll
                    for (int i = 0; i < kVec; i++) {
                        acc[i] = __fmaf_rn(v[i], w[u], acc[i]);
                    }
                }
            }
        }
        if (dim < d) {
            store_floats(out + dim, acc);
        }
    }

    float wsum = 0;
    for (int r = 0; r < count; r++) {
        wsum += __shfl_sync(0xffffffffu, r < 32 ? w_low : w_high, r % 32);
    }
    if (lane == 0) {
        ws.partial_weights[g] = wsum;
    }
}

/// Per cluster, by a team of kTeam threads (a warp, or the whole block):
/// its weight (fp64 over its chunks in order), its mean (fp64 over its
/// partial rows in chunk order; empty -> zeros; frozen untouched) and its
/// shift, the sum of its coordinates' squared moves: each thread adds its
/// own coordinates in order, then a fixed shuffle tree (and, for a block,
/// a fixed order over the warps) adds the threads' sums: deterministic.
template <int kTeam>
__global__ void __launch_bounds__(kTeam == 32 ? 32 * kWarpsPerBlock : kTeam)
        cluster_means_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    constexpr int kTeamsPerBlock = kTeam == 32 ? kWarpsPerBlock : 1;
    constexpr int kPassDims = kTeam * kMeanDimsPerThread;
    __shared__ double s_warp_shift[kTeam / 32];
    const int t = threadIdx.x % kTeam;
    const int team = threadIdx.x / kTeam;
    const int64_t d = args.d;
    for (int64_t q = blockIdx.x * int64_t(kTeamsPerBlock) + team; q < clusters;
         q += int64_t(gridDim.x) * kTeamsPerBlock) {
        const int64_t g0 = ws.chunk_start[q], g1 = ws.chunk_start[q + 1];
        double weight_sum = 0;
        for (int64_t g = g0; g < g1; g++) {
            weight_sum += ws.partial_weights[g];
        }
        // The mean divides by the weight as stored, in fp32.
        const float weight = float(weight_sum);
        if (t == 0) {
            args.cluster_weights[q] = weight;
        }
        if (q % args.k < args.k_frozen) {
            if (t == 0) {
                ws.cluster_shift[q] = 0;
            }
            continue;
        }
        float* centroid = args.centroids + q * d;
        double shift = 0;
        for (int64_t pass = 0; pass < d; pass += kPassDims) {
            // Dimensions past d read the last one, and are not written:
            // unconditional loads let the compiler overlap the chunks'.
            int64_t column[kMeanDimsPerThread];
#pragma unroll
            for (int j = 0; j < kMeanDimsPerThread; j++) {
                column[j] = min(pass + t + j * kTeam, d - 1);
            }
            double sum[kMeanDimsPerThread] = {};
            const float* partial = ws.partials + g0 * d;
#pragma unroll 4
            for (int64_t g = g0; g < g1; g++, partial += d) {
#pragma unroll
                for (int j = 0; j < kMeanDimsPerThread; j++) {
                    sum[j] += partial[column[j]];
                }
            }
#pragma unroll
            for (int j = 0; j < kMeanDimsPerThread; j++) {
                const int64_t dim = pass + t + j * kTeam;
                if (dim < d) {
                    const float updated = weight == 0 ? 0.0f : float(sum[j] / weight);
                    const double delta = double(updated) - centroid[dim];
                    shift = __fma_rn(delta, delta, shift);
                    centroid[dim] = updated;
                }
            }
        }
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
            shift += __shfl_xor_sync(0xffffffffu, shift, off);
        }
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
            ws.cluster_shift[q] = shift;
        }
    }
}

/// One block per problem, fixed-order reductions over its clusters.
__global__ void problem_stats_kernel(UpdateArgs args, Workspace ws) {
    __shared__ double s_shift[256], s_sq[256];
    __shared__ long long s_empty[256];
    const int64_t b = blockIdx.x;
    double shift = 0, sq = 0;
    long long empty = 0;
    for (int64_t c = threadIdx.x; c < args.k; c += blockDim.x) {
        const int64_t q = b * args.k + c;
        const double count = double(ws.offsets[q + 1] - ws.offsets[q]);
        sq += count * count;
        empty += c >= args.k_frozen && args.cluster_weights[q] == 0;
    }
    for (int64_t c = threadIdx.x; c < args.k; c += blockDim.x) {
        shift += ws.cluster_shift[b * args.k + c]; // frozen ones are 0
    }
    s_shift[threadIdx.x] = shift;
    s_sq[threadIdx.x] = sq;
    s_empty[threadIdx.x] = empty;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            s_shift[threadIdx.x] += s_shift[threadIdx.x + stride];
            s_sq[threadIdx.x] += s_sq[threadIdx.x + stride];
            s_empty[threadIdx.x] += s_empty[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double n = double(args.n);
        args.stats[b] = UpdateStats{s_shift[0], s_sq[0] * args.k / (n * n), s_empty[0]};
    }
}

/// The widest access (kVecBytes, halving down to one element) for which
/// every lane's run of coordinates is aligned and inside its row: x, the
/// row stride and d must all be multiples of it, and the partial rows must
/// take the matching fp32 stores. Wider is not taken where a warp's lanes
/// would cover more than one row per pass (idle lanes, no gain).
template <typename T, int kVecBytes>
void launch_chunk_sums(const UpdateArgs& args, const Workspace& ws, int64_t clusters, cudaStream_t stream) {
    if constexpr (kVecBytes > int(sizeof(T))) {
        const int64_t row_bytes = args.d * int64_t(sizeof(T));
        const bool fits = reinterpret_cast<uintptr_t>(args.x) % kVecBytes == 0 &&
                args.ldx * int64_t(sizeof(T)) % kVecBytes == 0 && row_bytes % kVecBytes == 0 &&
                row_bytes >= 32 * kVecBytes && reinterpret_cast<uintptr_t>(ws.partials) % 16 == 0;
        if (!fits) {
            launch_chunk_sums<T, kVecBytes / 2>(args, ws, clusters, stream);
            return;
        }
    }
    // Grid for the worst case; warps past the real chunk count return.
    chunk_sums_kernel<T, kVecBytes / int(sizeof(T))>
            <<<unsigned((ws.max_chunks + kWarpsPerBlock - 1) / kWarpsPerBlock), 32 * kWarpsPerBlock, 0, stream>>>(
                    args, ws, clusters);
    check_launch("chunk_sums");
}

template <int kTeam>
void launch_cluster_means(const UpdateArgs& args, const Workspace& ws, int64_t clusters, cudaStream_t stream) {
    constexpr int kTeamsPerBlock = kTeam == 32 ? kWarpsPerBlock : 1;
    cluster_means_kernel<kTeam><<<blocks_for(clusters, kTeamsPerBlock), kTeam * kTeamsPerBlock, 0, stream>>>(
            args, ws, clusters);
    check_launch("cluster_means");
}

} // namespace

size_t update_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d) {
    return Workspace(nullptr, batch, n, k, d).total;
}

void update_centroids(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const int64_t rows = args.batch * args.n, clusters = args.batch * args.k;
    FAISS_THROW_IF_NOT_FMT(
            rows < (int64_t(1) << 32) && clusters < (int64_t(1) << 32),
            "sort-inverse update: B·N = %ld points and B·K = %ld clusters must each be < 2^32",
            long(rows), long(clusters));
    Workspace ws(workspace, args.batch, args.n, args.k, args.d);

    make_keys_kernel<<<blocks_for(rows, 256), 256, 0, stream>>>(
            args.labels, uint32_t(args.n), uint32_t(args.k), rows, ws.keys_in, ws.rows_in);
    check_launch("make_keys");
    size_t sort_bytes = ws.sort_temp_bytes;
    const cudaError_t sort_err = cub::DeviceRadixSort::SortPairs(
            ws.sort_temp, sort_bytes, ws.keys_in, ws.keys_out, ws.rows_in, ws.rows_out, rows, 0,
            key_bits(clusters), stream);
    FAISS_THROW_IF_NOT_FMT(sort_err == cudaSuccess, "radix sort failed: %s", cudaGetErrorString(sort_err));
    segment_offsets_kernel<<<blocks_for(clusters + 1, 256), 256, 0, stream>>>(
            ws.keys_out, rows, clusters, ws.offsets, ws.chunk_count);
    check_launch("segment_offsets");
    size_t scan_bytes = ws.scan_temp_bytes;
    const cudaError_t scan_err = cub::DeviceScan::ExclusiveSum(
            ws.scan_temp, scan_bytes, ws.chunk_count, ws.chunk_start, clusters + 1, stream);
    FAISS_THROW_IF_NOT_FMT(scan_err == cudaSuccess, "chunk scan failed: %s", cudaGetErrorString(scan_err));
    switch (args.x_type) {
        case PointType::F16:
            launch_chunk_sums<__half, 16>(args, ws, clusters, stream);
            break;
        case PointType::BF16:
            launch_chunk_sums<__nv_bfloat16, 16>(args, ws, clusters, stream);
            break;
        default:
            launch_chunk_sums<float, 16>(args, ws, clusters, stream);
    }
    // Enough threads per cluster for kMeanDimsPerThread dimensions each,
    // up to a block.
    const int64_t mean_threads = (args.d + kMeanDimsPerThread - 1) / kMeanDimsPerThread;
    if (mean_threads <= 32) {
        launch_cluster_means<32>(args, ws, clusters, stream);
    } else if (mean_threads <= 64) {
        launch_cluster_means<64>(args, ws, clusters, stream);
    } else if (mean_threads <= 128) {
        launch_cluster_means<128>(args, ws, clusters, stream);
    } else {
        launch_cluster_means<256>(args, ws, clusters, stream);
    }
    problem_stats_kernel<<<unsigned(args.batch), 256, 0, stream>>>(args, ws);
    check_launch("problem_stats");
}

} // namespace kernels
} // namespace faiss_flash

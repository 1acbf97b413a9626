// Sort-inverse update kernels and their launch helper (see .cuh).

#include "sort_inverse_update.cuh"
#include "update_common.cuh"
#include "../util/launch_check.h"
#include "../util/point_load.cuh"

#include <algorithm>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

/// Sorted points per chunk: a warp's share of one cluster. Most clusters of
/// usual k-means shapes fit in one chunk, whose warp then finishes the
/// cluster itself; a hot cluster still spreads over many warps.
constexpr int kChunkRows = 256;
/// Rows of a chunk whose loads a lane issues before it adds any of them:
/// one row at a time leaves the chunk sum latency bound.
constexpr int kRowsInFlight = 8;

/// Chunks of cluster q, the scan's input: at least one, so that an empty
/// cluster has a warp to finish it like any single-chunk one (its chunk
/// has no rows).
struct ChunkCount {
    const int64_t* offsets;

    __host__ __device__ int64_t operator()(uint32_t q) const {
        const uint64_t size = offsets[q + 1] - offsets[q];
        return int64_t(size > kChunkRows ? (size + kChunkRows - 1) / kChunkRows : 1);
    }
};

/// q < 2^32 (checked at launch).
using ChunkCountIterator = thrust::transform_iterator<ChunkCount, thrust::counting_iterator<uint32_t>>;

ChunkCountIterator chunk_counts(const int64_t* offsets) {
    return ChunkCountIterator(thrust::counting_iterator<uint32_t>(0), ChunkCount{offsets});
}

/// Workspace carve-up, the same on host (sizes) and device (pointers).
struct Workspace {
    uint32_t* keys_in;
    uint32_t* keys_out;
    uint32_t* rows_in;
    uint32_t* rows_out;
    int64_t* offsets;       // B·K + 1: first sorted position of each cluster
    int64_t* chunk_start;   // B·K + 1: first chunk of each cluster (last: all chunks)
    float* partials;        // max_chunks × d; rows of clusters of several chunks only
    float* partial_weights; // max_chunks; likewise
    double* cluster_shift;  // B·K
    uint32_t* multi;        // max_multi: the clusters of several chunks, in no set order
    uint32_t* multi_count;  // 1
    void* sort_temp;
    size_t sort_temp_bytes;
    void* scan_temp;
    size_t scan_temp_bytes;
    int64_t max_chunks;
    int64_t max_multi;
    size_t total;

    Workspace(void* base, int64_t batch, int64_t n, int64_t k, int64_t d) {
        const int64_t rows = batch * n, clusters = batch * k;
        // Each cluster has at most count / kChunkRows + 1 chunks (an empty one
        // too), and one of several chunks has more than kChunkRows points.
        max_chunks = (rows + kChunkRows - 1) / kChunkRows + clusters;
        max_multi = std::min(clusters, rows / (kChunkRows + 1));
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
        chunk_start = static_cast<int64_t*>(take(sizeof(int64_t) * (clusters + 1)));
        partials = static_cast<float*>(take(sizeof(float) * max_chunks * d));
        partial_weights = static_cast<float*>(take(sizeof(float) * max_chunks));
        cluster_shift = static_cast<double*>(take(sizeof(double) * clusters));
        multi = static_cast<uint32_t*>(take(sizeof(uint32_t) * max_multi));
        multi_count = static_cast<uint32_t*>(take(sizeof(uint32_t)));
        sort_temp_bytes = 0;
        cub::DeviceRadixSort::SortPairs(
                nullptr, sort_temp_bytes, keys_in, keys_out, rows_in, rows_out, rows, 0, 32);
        sort_temp = take(sort_temp_bytes);
        scan_temp_bytes = 0;
        cub::DeviceScan::InclusiveSum(nullptr, scan_temp_bytes, chunk_counts(offsets), chunk_start + 1, clusters);
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

/// B·N and B·K are < 2^32 (checked at launch), so 32-bit arithmetic is
/// exact here and avoids a 64-bit division per point.
__global__ void make_keys_kernel(const int32_t* labels, uint32_t n, uint32_t k, int64_t rows, uint32_t* keys, uint32_t* row_ids) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows; i += int64_t(gridDim.x) * blockDim.x) {
        keys[i] = uint32_t(i) / n * k + uint32_t(labels[i]);
        row_ids[i] = uint32_t(i);
    }
}

/// offsets[q] = first sorted position with key >= q, for q in [0, clusters]:
/// position i (of 0..rows) writes it for every q in (key[i-1], key[i]],
/// taking key[-1] = -1 and key[rows] = clusters, so each q is written once
/// in one streaming pass (no search per cluster). Also sets the chunk
/// scan's first entry (the scan writes the others) and empties the list of
/// clusters of several chunks that chunk_sums_kernel fills.
__global__ void segment_offsets_kernel(Workspace ws, int64_t rows, int64_t clusters) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        ws.chunk_start[0] = 0;
        *ws.multi_count = 0;
    }
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i <= rows; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t prev = i == 0 ? -1 : int64_t(ws.keys_out[i - 1]);
        const int64_t next = i == rows ? clusters : int64_t(ws.keys_out[i]);
        for (int64_t q = prev + 1; q <= next; q++) {
            ws.offsets[q] = i;
        }
    }
}

/// The cluster owning chunk g: the last q in [0, clusters) with
/// chunk_start[q] <= g. The warp probes 32 evenly spaced entries per step,
/// so the chain of dependent loads is log32(clusters) long rather than
/// log2(clusters).
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

/// A chunk entry staged in shared memory, read by all lanes at once.
struct ChunkEntry {
    uint32_t row;
    float weight;
};

/// One warp per chunk: fp32 sums of its points (sorted = index order),
/// acc = fma(x, w, acc) per row in order, and of their weights. Each lane
/// covers kVec contiguous dimensions per pass, loaded in one access (the
/// launch checks the alignment); kVec = 1 is the general path.
///
/// The only chunk of its cluster (an empty cluster has one, of no rows)
/// finishes the cluster: weight, mean = weight == 0 ? 0 : float(double(acc)
/// / weight) (frozen: untouched) and shift, each lane's squared moves added
/// in its dimensions' order, then warp_sum. Another chunk writes a partial
/// row and weight for cluster_means_kernel, and the cluster's first chunk
/// lists the cluster for it.
template <typename T, int kVec>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) chunk_sums_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    static_assert(kChunkRows % 32 == 0, "the warp stages its chunk's entries a row per lane at a time");
    constexpr int kPassDims = 32 * kVec;
    __shared__ ChunkEntry s_entries[kWarpsPerBlock][kChunkRows];
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int64_t g = blockIdx.x * int64_t(kWarpsPerBlock) + warp;
    if (g >= ws.chunk_start[clusters]) {
        return;
    }
    const int64_t q = owning_cluster(ws.chunk_start, clusters, g, lane);
    const int64_t g0 = ws.chunk_start[q];
    const bool alone = ws.chunk_start[q + 1] - g0 == 1;
    if (!alone && g == g0 && lane == 0) {
        ws.multi[atomicAdd(ws.multi_count, 1u)] = uint32_t(q);
    }
    // One 32-bit modulo per warp: B·K < 2^32.
    const bool frozen = uint32_t(q) % uint32_t(args.k) < args.k_frozen;
    const bool finishes = alone && !frozen;
    const int64_t p0 = ws.offsets[q] + (g - g0) * kChunkRows;
    const int count = int(min(ws.offsets[q + 1] - p0, int64_t(kChunkRows)));

    // Row ids and weights up front, so no load in the row loop waits on
    // another global one.
    ChunkEntry* entries = s_entries[warp];
#pragma unroll
    for (int j = 0; j < kChunkRows / 32; j++) {
        const int r = j * 32 + lane;
        if (r < count) {
            const uint32_t row = ws.rows_out[p0 + r];
            entries[r] = ChunkEntry{row, args.weights ? args.weights[row] : 1.0f};
        }
    }
    __syncwarp();

    const T* x = static_cast<const T*>(args.x);
    const int64_t d = args.d;
    float* centroid = args.centroids + q * d;
    float* partial = ws.partials + g * d;
    float weight = 0;
    double shift = 0;
    for (int64_t pass = 0; pass < d; pass += kPassDims) {
        const int64_t dim = pass + lane * kVec;
        // Every load is issued, from a clamped row and dimension where the
        // chunk or the row ends (repeats, not added): predicated loads
        // would make the compiler copy each result out and serialize on it.
        const int64_t column = min(dim, d - kVec);
        // Loaded ahead of the rows, so their latency overlaps.
        float old[kVec] = {};
        if (finishes) {
            load_floats(centroid + column, old);
        }
        float acc[kVec] = {};
        // Recomputed in every pass (one add per row beside kVec fmas)
        // rather than in a serial loop of its own.
        weight = 0;
        for (int r0 = 0; r0 < count; r0 += kRowsInFlight) {
            PointVector<T, kVec> loaded[kRowsInFlight];
            float w[kRowsInFlight];
#pragma unroll
            for (int u = 0; u < kRowsInFlight; u++) {
                const ChunkEntry e = entries[min(r0 + u, count - 1)];
                w[u] = e.weight;
                loaded[u].load(x + e.row * args.ldx + column);
            }
#pragma unroll
            for (int u = 0; u < kRowsInFlight; u++) {
                if (r0 + u < count) {
                    weight += w[u];
                    if (dim < d) {
                        float v[kVec];
                        loaded[u].to_float(v);
#pragma unroll
                        for (int i = 0; i < kVec; i++) {
                            acc[i] = __fmaf_rn(v[i], w[u], acc[i]);
                        }
                    }
                }
            }
        }
        if (dim < d) {
            if (!alone) {
                store_floats(partial + dim, acc);
            } else if (finishes) {
                float mean[kVec];
#pragma unroll
                for (int i = 0; i < kVec; i++) {
                    mean[i] = updated_coordinate(double(acc[i]), weight, old[i], shift);
                }
                store_floats(centroid + dim, mean);
            }
        }
    }

    if (alone) {
        shift = warp_sum(shift);
        if (lane == 0) {
            args.cluster_weights[q] = weight;
            ws.cluster_shift[q] = shift;
        }
    } else if (lane == 0) {
        ws.partial_weights[g] = weight;
    }
}

/// cluster_means_kernel's view of the clusters of several chunks: those
/// chunk_sums_kernel listed, each with its chunks' partial rows in chunk
/// order.
struct ListedChunks {
    using Value = float;
    const int64_t* chunk_start;
    const uint32_t* multi;
    const uint32_t* multi_count;
    const float* partials;
    const float* partial_weights;
    int64_t d;

    __device__ uint32_t size() const {
        return *multi_count;
    }
    __device__ uint32_t cluster(uint32_t i) const {
        return multi[i];
    }
    __device__ PartialRows<float> rows(uint32_t q) const {
        const int64_t g0 = chunk_start[q];
        return PartialRows<float>{partials + g0 * d, d, partial_weights + g0, nullptr, 1, chunk_start[q + 1] - g0};
    }
};

/// A cluster's points: the length of its sorted segment.
struct SegmentCounts {
    const int64_t* offsets;

    __device__ int64_t operator()(int64_t q) const {
        return offsets[q + 1] - offsets[q];
    }
};

/// The widest access (kVecBytes, halving down to one element) for which
/// every lane's run of coordinates is aligned and inside its row: x, the
/// row stride and d must all be multiples of it, and the partial rows and
/// centroids must take the matching fp32 accesses. Wider is not taken
/// where a warp's lanes would cover more than one row per pass (idle
/// lanes, no gain).
template <typename T, int kVecBytes>
void launch_chunk_sums(const UpdateArgs& args, const Workspace& ws, int64_t clusters, cudaStream_t stream) {
    if constexpr (kVecBytes > int(sizeof(T))) {
        const int64_t row_bytes = args.d * int64_t(sizeof(T));
        const bool fits = reinterpret_cast<uintptr_t>(args.x) % kVecBytes == 0 &&
                args.ldx * int64_t(sizeof(T)) % kVecBytes == 0 && row_bytes % kVecBytes == 0 &&
                row_bytes >= 32 * kVecBytes && reinterpret_cast<uintptr_t>(ws.partials) % 16 == 0 &&
                reinterpret_cast<uintptr_t>(args.centroids) % std::min(16, 4 * kVecBytes / int(sizeof(T))) == 0;
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

} // namespace

size_t sort_inverse_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d) {
    return Workspace(nullptr, batch, n, k, d).total;
}

void sort_inverse_update(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const int64_t rows = args.batch * args.n, clusters = args.batch * args.k;
    Workspace ws(workspace, args.batch, args.n, args.k, args.d);

    make_keys_kernel<<<blocks_for(rows, 256), 256, 0, stream>>>(
            args.labels, uint32_t(args.n), uint32_t(args.k), rows, ws.keys_in, ws.rows_in);
    check_launch("make_keys");
    size_t sort_bytes = ws.sort_temp_bytes;
    const cudaError_t sort_err = cub::DeviceRadixSort::SortPairs(
            ws.sort_temp, sort_bytes, ws.keys_in, ws.keys_out, ws.rows_in, ws.rows_out, rows, 0,
            key_bits(clusters), stream);
    FAISS_THROW_IF_NOT_FMT(sort_err == cudaSuccess, "radix sort failed: %s", cudaGetErrorString(sort_err));
    segment_offsets_kernel<<<blocks_for(rows + 1, 256), 256, 0, stream>>>(ws, rows, clusters);
    check_launch("segment_offsets");
    size_t scan_bytes = ws.scan_temp_bytes;
    const cudaError_t scan_err = cub::DeviceScan::InclusiveSum(
            ws.scan_temp, scan_bytes, chunk_counts(ws.offsets), ws.chunk_start + 1, clusters, stream);
    FAISS_THROW_IF_NOT_FMT(scan_err == cudaSuccess, "chunk scan failed: %s", cudaGetErrorString(scan_err));
    with_point_type(args.x_type, [&](auto point) {
        launch_chunk_sums<decltype(point), 16>(args, ws, clusters, stream);
    });
    // Where no cluster can have several chunks, chunk_sums finished them all.
    if (ws.max_multi > 0) {
        const ListedChunks listed{ws.chunk_start, ws.multi, ws.multi_count, ws.partials, ws.partial_weights, args.d};
        launch_cluster_means(args, listed, ws.max_multi, ws.cluster_shift, nullptr, stream);
    }
    launch_problem_stats(args, SegmentCounts{ws.offsets}, ws.cluster_shift, stream);
}

} // namespace kernels
} // namespace faiss_flash

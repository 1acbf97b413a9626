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
    double* coord_shift;   // B·K·d: squared move per coordinate
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
        coord_shift = static_cast<double*>(take(sizeof(double) * clusters * d));
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

__global__ void make_keys_kernel(const int32_t* labels, int64_t n, int64_t k, int64_t rows, uint32_t* keys, uint32_t* row_ids) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows; i += int64_t(gridDim.x) * blockDim.x) {
        keys[i] = uint32_t((i / n) * k + labels[i]);
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

/// One warp per chunk: fp32 sum of its points (sorted = index order) into
/// one partial row. Lanes cover the dimensions.
__global__ void chunk_sums_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    const int lane = threadIdx.x % 32;
    const int64_t g = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
    if (g >= ws.chunk_start[clusters]) {
        return;
    }
    // The cluster owning chunk g: the last q with chunk_start[q] <= g.
    int64_t lo = 0, hi = clusters;
    while (hi - lo > 1) {
        const int64_t mid = (lo + hi) / 2;
        if (ws.chunk_start[mid] <= g) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    const int64_t q = lo;
    const int64_t p0 = ws.offsets[q] + (g - ws.chunk_start[q]) * kChunkRows;
    const int64_t end = ws.offsets[q + 1];
    const int64_t p1 = p0 + kChunkRows < end ? p0 + kChunkRows : end;
    float* out = ws.partials + g * args.d;
    // 4 dimensions per lane per pass: a row's loads are issued together.
    for (int64_t dbase = 0; dbase < args.d; dbase += 128) {
        float acc[4] = {0, 0, 0, 0};
#pragma unroll 2
        for (int64_t p = p0; p < p1; p++) {
            const int64_t row = ws.rows_out[p];
            const float w = args.weights ? args.weights[row] : 1.0f;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int64_t dim = dbase + lane + 32 * j;
                if (dim < args.d) {
                    acc[j] += load_point(args.x, args.x_type, row * args.ldx + dim) * w;
                }
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int64_t dim = dbase + lane + 32 * j;
            if (dim < args.d) {
                out[dim] = acc[j];
            }
        }
    }
    if (lane == 0) {
        float wsum = 0;
        for (int64_t p = p0; p < p1; p++) {
            wsum += args.weights ? args.weights[ws.rows_out[p]] : 1.0f;
        }
        ws.partial_weights[g] = wsum;
    }
}

/// Per cluster: total weight of its chunks, in chunk order.
__global__ void cluster_weights_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < clusters; q += int64_t(gridDim.x) * blockDim.x) {
        double weight = 0;
        for (int64_t g = ws.chunk_start[q]; g < ws.chunk_start[q + 1]; g++) {
            weight += ws.partial_weights[g];
        }
        args.cluster_weights[q] = float(weight);
    }
}

/// One thread per (cluster, dim): adds the cluster's partial rows in chunk
/// order (fp64), writes the mean (empty -> zeros; frozen untouched) and the
/// squared move of that coordinate.
__global__ void finalize_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < clusters * args.d; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t q = e / args.d, dim = e % args.d;
        double moved = 0;
        if (q % args.k >= args.k_frozen) {
            double sum = 0;
            for (int64_t g = ws.chunk_start[q]; g < ws.chunk_start[q + 1]; g++) {
                sum += ws.partials[g * args.d + dim];
            }
            const float weight = args.cluster_weights[q];
            const float updated = weight == 0 ? 0.0f : float(sum / weight);
            const double delta = double(updated) - args.centroids[e];
            moved = delta * delta;
            args.centroids[e] = updated;
        }
        ws.coord_shift[e] = moved;
    }
}

/// Per cluster: its coordinates' squared moves, in dimension order.
__global__ void cluster_shift_kernel(const Workspace ws, int64_t clusters, int64_t d) {
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < clusters; q += int64_t(gridDim.x) * blockDim.x) {
        double shift = 0;
        for (int64_t dim = 0; dim < d; dim++) {
            shift += ws.coord_shift[q * d + dim];
        }
        ws.cluster_shift[q] = shift;
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

    make_keys_kernel<<<blocks_for(rows, 256), 256, 0, stream>>>(args.labels, args.n, args.k, rows, ws.keys_in, ws.rows_in);
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
    // Grid for the worst case; warps past the real chunk count return.
    chunk_sums_kernel<<<unsigned((ws.max_chunks + kWarpsPerBlock - 1) / kWarpsPerBlock), 32 * kWarpsPerBlock, 0, stream>>>(
            args, ws, clusters);
    check_launch("chunk_sums");
    cluster_weights_kernel<<<blocks_for(clusters, 256), 256, 0, stream>>>(args, ws, clusters);
    check_launch("cluster_weights");
    finalize_kernel<<<blocks_for(clusters * args.d, 256), 256, 0, stream>>>(args, ws, clusters);
    check_launch("finalize");
    cluster_shift_kernel<<<blocks_for(clusters, 256), 256, 0, stream>>>(ws, clusters, args.d);
    check_launch("cluster_shift");
    problem_stats_kernel<<<unsigned(args.batch), 256, 0, stream>>>(args, ws);
    check_launch("problem_stats");
}

} // namespace kernels
} // namespace faiss_flash

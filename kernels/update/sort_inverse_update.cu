// Sort-inverse update kernels and their launch helper (see .cuh).

#include "sort_inverse_update.cuh"

#include <cmath>
#include <vector>

#include <cub/device/device_radix_sort.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

/// Sorted positions per warp: long enough that a segment usually flushes
/// once per chunk, short enough to balance hot clusters over many warps.
constexpr int kChunk = 64;
constexpr int kWarpsPerBlock = 8;
/// Dimensions a warp covers per pass (4 per lane).
constexpr int kDimsPerPass = 128;

void check_launch(const char* what) {
    const cudaError_t err = cudaGetLastError();
    FAISS_THROW_IF_NOT_FMT(err == cudaSuccess, "%s launch failed: %s", what, cudaGetErrorString(err));
}

__device__ __forceinline__ float load_point(const void* x, PointType t, int64_t i) {
    switch (t) {
        case PointType::F16:
            return __half2float(static_cast<const __half*>(x)[i]);
        case PointType::BF16:
            return __bfloat162float(static_cast<const __nv_bfloat16*>(x)[i]);
        default:
            return static_cast<const float*>(x)[i];
    }
}

/// Workspace carve-up, the same on host (sizes) and device (pointers).
struct Workspace {
    uint32_t* keys_in;
    uint32_t* keys_out;
    uint32_t* rows_in;
    uint32_t* rows_out;
    int64_t* offsets;              // B·K + 1
    unsigned long long* coord_sums; // B·K·d fixed point
    unsigned long long* weight_sums; // B·K fixed point
    double* cluster_shift;         // B·K
    float* max_abs;                // B + 1 (last: max weight)
    void* sort_temp;
    size_t sort_temp_bytes;
    size_t total;

    Workspace(void* base, int64_t batch, int64_t n, int64_t k, int64_t d) {
        const int64_t rows = batch * n, clusters = batch * k;
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
        coord_sums = static_cast<unsigned long long*>(take(sizeof(unsigned long long) * clusters * d));
        weight_sums = static_cast<unsigned long long*>(take(sizeof(unsigned long long) * clusters));
        cluster_shift = static_cast<double*>(take(sizeof(double) * clusters));
        max_abs = static_cast<float*>(take(sizeof(float) * (batch + 1)));
        sort_temp_bytes = 0;
        cub::DeviceRadixSort::SortPairs(
                nullptr, sort_temp_bytes, keys_in, keys_out, rows_in, rows_out, rows, 0, 32);
        sort_temp = take(sort_temp_bytes);
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

__global__ void make_keys_kernel(const int32_t* labels, int64_t n, int64_t k, int64_t rows, uint32_t* keys, uint32_t* row_ids) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows; i += int64_t(gridDim.x) * blockDim.x) {
        keys[i] = uint32_t((i / n) * k + labels[i]);
        row_ids[i] = uint32_t(i);
    }
}

/// offsets[q] = first sorted position with key >= q (binary search).
__global__ void segment_offsets_kernel(const uint32_t* sorted_keys, int64_t rows, int64_t clusters, int64_t* offsets) {
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q <= clusters; q += int64_t(gridDim.x) * blockDim.x) {
        int64_t lo = 0, hi = rows;
        while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            if (sorted_keys[mid] < q) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        offsets[q] = lo;
    }
}

__device__ __forceinline__ void add_fixed(unsigned long long* dst, double v, double scale) {
    atomicAdd(dst, static_cast<unsigned long long>(__double2ll_rn(v * scale)));
}

/// One warp reduces kChunk consecutive sorted points: fp32 sums in sorted
/// (= point index) order within a segment, one fixed-point add per
/// (segment, dim) when the segment or the chunk ends.
__global__ void segment_reduce_kernel(UpdateArgs args, Workspace ws, int64_t rows) {
    const int lane = threadIdx.x % 32;
    const int64_t chunk = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
    const int64_t p0 = chunk * kChunk;
    if (p0 >= rows) {
        return;
    }
    const int64_t p1 = p0 + kChunk < rows ? p0 + kChunk : rows;
    const int64_t d = args.d;
    for (int64_t dbase = 0; dbase < d; dbase += kDimsPerPass) {
        float acc[4] = {0, 0, 0, 0};
        float wacc = 0;
        uint32_t cur = ws.keys_out[p0];
        auto flush = [&](uint32_t q) {
            const double scale = args.coord_scale[q / args.k];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int64_t dim = dbase + lane + 32 * j;
                if (dim < d) {
                    add_fixed(ws.coord_sums + q * d + dim, acc[j], scale);
                }
                acc[j] = 0;
            }
            if (dbase == 0 && lane == 0) {
                add_fixed(ws.weight_sums + q, wacc, args.weight_scale);
            }
            wacc = 0;
        };
        for (int64_t p = p0; p < p1; p++) {
            const uint32_t q = ws.keys_out[p];
            if (q != cur) {
                flush(cur);
                cur = q;
            }
            const int64_t row = ws.rows_out[p];
            const float w = args.weights ? args.weights[row] : 1.0f;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const int64_t dim = dbase + lane + 32 * j;
                if (dim < d) {
                    acc[j] += load_point(args.x, args.x_type, row * args.ldx + dim) * w;
                }
            }
            wacc += w;
        }
        flush(cur);
    }
}

/// One warp per cluster: mean from the fixed-point sums, empty -> zeros,
/// frozen clusters untouched; the squared move for the stopping rule.
__global__ void finalize_kernel(UpdateArgs args, Workspace ws, int64_t clusters) {
    const int lane = threadIdx.x % 32;
    const int64_t q = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    if (q >= clusters) {
        return;
    }
    const int64_t b = q / args.k, c = q % args.k;
    const int64_t count = ws.offsets[q + 1] - ws.offsets[q];
    const double weight = args.weights
            ? double(static_cast<long long>(ws.weight_sums[q])) / args.weight_scale
            : double(count);
    if (lane == 0) {
        args.cluster_weights[q] = float(weight);
    }
    double shift = 0;
    if (c >= args.k_frozen) {
        const double scale = args.coord_scale[b];
        float* centroid = args.centroids + q * args.d;
        for (int64_t dim = lane; dim < args.d; dim += 32) {
            const double sum = double(static_cast<long long>(ws.coord_sums[q * args.d + dim])) / scale;
            const float updated = weight == 0 ? 0.0f : float(sum / weight);
            const double delta = double(updated) - centroid[dim];
            shift += delta * delta;
            centroid[dim] = updated;
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        shift += __shfl_xor_sync(0xffffffff, shift, off);
    }
    if (lane == 0) {
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
        if (c >= args.k_frozen) {
            shift += ws.cluster_shift[q];
            empty += args.cluster_weights[q] == 0;
        }
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

/// max |x| per problem (blocks of one problem meet through an atomicMax on
/// the float's bits: order-free, so deterministic) and max weight.
__global__ void max_abs_kernel(const void* x, int64_t ldx, PointType t, const float* weights, int64_t n, int64_t d, int64_t blocks_per_problem, int64_t batch, float* max_abs) {
    const int64_t b = blockIdx.x / blocks_per_problem;
    const int64_t part = blockIdx.x % blocks_per_problem;
    float m = 0, mw = 0;
    for (int64_t i = part * blockDim.x + threadIdx.x; i < n * d; i += blocks_per_problem * blockDim.x) {
        const int64_t row = b * n + i / d;
        m = fmaxf(m, fabsf(load_point(x, t, row * ldx + i % d)));
        if (weights && i % d == 0) {
            mw = fmaxf(mw, fabsf(weights[row]));
        }
    }
    // Non-negative floats order like their bit patterns.
    atomicMax(reinterpret_cast<int*>(max_abs + b), __float_as_int(m));
    atomicMax(reinterpret_cast<int*>(max_abs + batch), __float_as_int(mw));
}

unsigned blocks_for(int64_t items, int threads) {
    return unsigned(std::min<int64_t>((items + threads - 1) / threads, int64_t(1) << 20));
}

} // namespace

size_t update_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d) {
    return Workspace(nullptr, batch, n, k, d).total;
}

double fixed_point_scales(
        const void* x,
        int64_t ldx,
        PointType x_type,
        const float* weights,
        int64_t batch,
        int64_t n,
        int64_t d,
        double* coord_scale,
        void* workspace,
        cudaStream_t stream) {
    // Only max_abs is used here; its place does not depend on k.
    Workspace ws(workspace, batch, n, 1, d);
    cudaMemsetAsync(ws.max_abs, 0, sizeof(float) * (batch + 1), stream);
    const int64_t per_problem = std::max<int64_t>(1, std::min<int64_t>((n * d) / (256 * 64), 64));
    max_abs_kernel<<<unsigned(batch * per_problem), 256, 0, stream>>>(
            x, ldx, x_type, weights, n, d, per_problem, batch, ws.max_abs);
    check_launch("max_abs");
    std::vector<float> max_abs(batch + 1);
    cudaMemcpyAsync(max_abs.data(), ws.max_abs, sizeof(float) * (batch + 1), cudaMemcpyDeviceToHost, stream);
    FAISS_THROW_IF_NOT_MSG(cudaStreamSynchronize(stream) == cudaSuccess, "fixed_point_scales: stream failed");

    const double max_w = weights ? std::max(double(max_abs[batch]), 1e-30) : 1.0;
    // 2^(61 - ceil(log2(bound))): any sum of n terms of magnitude <= bound/n
    // stays below 2^61 in magnitude, with room for rounding.
    auto scale_for = [](double bound) {
        return std::ldexp(1.0, 61 - int(std::ceil(std::log2(std::max(bound, 1e-30)))));
    };
    std::vector<double> scales(batch);
    for (int64_t b = 0; b < batch; b++) {
        scales[b] = scale_for(double(n) * std::max(double(max_abs[b]), 1e-30) * max_w);
    }
    cudaMemcpyAsync(coord_scale, scales.data(), sizeof(double) * batch, cudaMemcpyHostToDevice, stream);
    FAISS_THROW_IF_NOT_MSG(cudaStreamSynchronize(stream) == cudaSuccess, "fixed_point_scales: stream failed");
    return scale_for(double(n) * max_w);
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
    size_t temp_bytes = ws.sort_temp_bytes;
    const cudaError_t sort_err = cub::DeviceRadixSort::SortPairs(
            ws.sort_temp, temp_bytes, ws.keys_in, ws.keys_out, ws.rows_in, ws.rows_out, rows, 0,
            key_bits(clusters), stream);
    FAISS_THROW_IF_NOT_FMT(sort_err == cudaSuccess, "radix sort failed: %s", cudaGetErrorString(sort_err));
    segment_offsets_kernel<<<blocks_for(clusters + 1, 256), 256, 0, stream>>>(ws.keys_out, rows, clusters, ws.offsets);
    check_launch("segment_offsets");

    cudaMemsetAsync(ws.coord_sums, 0, sizeof(unsigned long long) * clusters * args.d, stream);
    cudaMemsetAsync(ws.weight_sums, 0, sizeof(unsigned long long) * clusters, stream);
    const int64_t chunks = (rows + kChunk - 1) / kChunk;
    segment_reduce_kernel<<<unsigned((chunks + kWarpsPerBlock - 1) / kWarpsPerBlock), 32 * kWarpsPerBlock, 0, stream>>>(
            args, ws, rows);
    check_launch("segment_reduce");
    finalize_kernel<<<unsigned((clusters + 7) / 8), 256, 0, stream>>>(args, ws, clusters);
    check_launch("finalize");
    problem_stats_kernel<<<unsigned(args.batch), 256, 0, stream>>>(args, ws);
    check_launch("problem_stats");
}

} // namespace kernels
} // namespace faiss_flash

#include "operands.cuh"
#include "launch_check.h"
#include "point_load.cuh"
#include "../warp/warp_reduce.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

/// Stores v as operand op; returns the value the tensor cores will see.
__device__ __forceinline__ float store_operand(void* p, Operand op, int64_t i, float v) {
    switch (op) {
        case Operand::F16: {
            const __half h = __float2half_rn(v);
            static_cast<__half*>(p)[i] = h;
            return __half2float(h);
        }
        case Operand::BF16: {
            const __nv_bfloat16 h = __float2bfloat16_rn(v);
            static_cast<__nv_bfloat16*>(p)[i] = h;
            return __bfloat162float(h);
        }
        default:
            static_cast<float*>(p)[i] = v;
            return v;
    }
}

/// The row of the calling warp in a one-warp-per-row launch.
__device__ __forceinline__ int64_t warp_row() {
    return blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
}

/// One warp per row: convert, zero the padding, sum the squares in a fixed
/// lane order (deterministic).
__global__ void convert_rows_kernel(const void* src, int64_t ld_src, PointType t, int64_t rows, int64_t d, void* dst, int64_t ld_dst, Operand op, float* norms) {
    const int lane = threadIdx.x % 32;
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    float sq = 0;
    for (int64_t j = lane; j < ld_dst; j += 32) {
        const float v = j < d ? load_point(src, t, r * ld_src + j) : 0.0f;
        const float seen = dst ? store_operand(dst, op, r * ld_dst + j, v) : v;
        sq += seen * seen;
    }
    sq = warp_sum(sq);
    if (norms && lane == 0) {
        norms[r] = sq;
    }
}

constexpr int kMinSplitExp = -62, kMaxSplitExp = 60;

/// The exponent e of the scale 2^e that brings max_abs below 2^15.
__device__ __forceinline__ int32_t split_exponent(float max_abs) {
    if (!(max_abs > 0)) {
        return 0;
    }
    int e = 0;
    frexpf(max_abs, &e); // max_abs < 2^e
    return max(kMinSplitExp, min(kMaxSplitExp, 15 - e));
}

/// One warp per row: the row's max |v| into its problem's maximum (the
/// bits of non-negative floats order like the floats: an integer max).
__global__ void problem_max_kernel(const float* x, int64_t ldx, int64_t rows, int64_t n, int64_t d, unsigned* max_bits) {
    const int lane = threadIdx.x % 32;
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    float m = 0;
    for (int64_t j = lane; j < d; j += 32) {
        m = fmaxf(m, fabsf(x[r * ldx + j]));
    }
    m = warp_max(m);
    if (lane == 0) {
        atomicMax(max_bits + r / n, __float_as_uint(m));
    }
}

__global__ void exponents_kernel(const unsigned* max_bits, int64_t batch, int32_t* exps) {
    for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < batch; b += int64_t(gridDim.x) * blockDim.x) {
        exps[b] = split_exponent(__uint_as_float(max_bits[b]));
    }
}

/** One warp per row: writes the three fp16 slices of the row (lo in slice
 * lo_slot, hi in the other two) and returns the fp32 sum of squares, in the
 * lane order of convert_rows_kernel (same norms as the fp32 operands).
 */
__device__ __forceinline__ float split_row(const float* src, int64_t d, int d_pad, int32_t e, int lo_slot, __half* dst) {
    const int lane = threadIdx.x % 32;
    float sq = 0;
    for (int64_t j = lane; j < d_pad; j += 32) {
        const float v = j < d ? src[j] : 0.0f;
        sq += v * v;
        const float scaled = ldexpf(v, e);
        const __half hi = __float2half_rn(scaled);
        const __half lo = __float2half_rn(scaled - __half2float(hi));
#pragma unroll
        for (int slot = 0; slot < 3; slot++) {
            dst[slot * d_pad + j] = slot == lo_slot ? lo : hi;
        }
    }
    return warp_sum(sq);
}

__global__ void split_points_kernel(const float* x, int64_t ldx, int64_t rows, int64_t n, int64_t d, int d_pad, const int32_t* exps, __half* dst, float* norms) {
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    const float sq = split_row(x + r * ldx, d, d_pad, exps[r / n], 2, dst + r * 3 * d_pad);
    if (norms && threadIdx.x % 32 == 0) {
        norms[r] = sq;
    }
}

__global__ void split_centroids_kernel(const float* c, int64_t rows, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, bool l2, __half* dst, float* bias, float* multiplier) {
    const int lane = threadIdx.x % 32;
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    const float* row = c + r * d;
    float m = 0;
    for (int64_t j = lane; j < d; j += 32) {
        m = fmaxf(m, fabsf(row[j]));
    }
    const int32_t e = split_exponent(warp_max(m));
    const float sq = split_row(row, d, d_pad, e, 1, dst + r * 3 * d_pad);
    if (lane == 0) {
        bias[r] = l2 ? sq : 0.0f;
        multiplier[r] = ldexpf(l2 ? -2.0f : -1.0f, -(e + point_exps[r / k]));
    }
}

__global__ void scale_centroids_kernel(const float* c, int64_t rows, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, const int32_t* exps, bool l2, __half* dst, float* bias, unsigned* norm_max_bits) {
    const int lane = threadIdx.x % 32;
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    const int32_t e = exps[r / k];
    float sq = 0;
    for (int64_t j = lane; j < d_pad; j += 32) {
        const float v = j < d ? c[r * d + j] : 0.0f;
        sq += v * v; // the lane order of split_row: the same norm
        dst[r * d_pad + j] = __float2half_rn(ldexpf(v, e));
    }
    sq = warp_sum(sq);
    if (lane == 0) {
        bias[r] = l2 ? ldexpf(sq, e + point_exps[r / k]) : 0.0f;
        // Bits of non-negative floats order like the floats: an integer max.
        atomicMax(norm_max_bits + r / k, __float_as_uint(sq));
    }
}

__global__ void pad_terms_kernel(const float* src, int64_t batch, int64_t k, int64_t k_pad, float fill, float* dst) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < batch * k_pad; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t b = i / k_pad, j = i % k_pad;
        dst[i] = j < k ? src[b * k + j] : fill;
    }
}

__global__ void post_process_kernel(float* c, int64_t rows, int64_t d, bool spherical, bool round_to_int) {
    const int lane = threadIdx.x % 32;
    const int64_t r = warp_row();
    if (r >= rows) {
        return;
    }
    float* row = c + r * d;
    if (spherical) {
        double sq = 0;
        for (int64_t j = lane; j < d; j += 32) {
            sq += double(row[j]) * row[j];
        }
        sq = warp_sum(sq);
        // FAISS's fvec_renorm_L2 leaves zero rows alone.
        if (sq > 0) {
            const float inv = float(1.0 / sqrt(sq));
            for (int64_t j = lane; j < d; j += 32) {
                row[j] *= inv;
            }
        }
    }
    if (round_to_int) {
        for (int64_t j = lane; j < d; j += 32) {
            row[j] = roundf(row[j]);
        }
    }
}

__global__ void gather_kernel(const void* x, int64_t ldx, PointType t, int64_t batch, int64_t n, int64_t d, int64_t k, const int32_t* point_rows, int64_t first, float* centroids) {
    const int64_t per_problem = (k - first) * d;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < batch * per_problem; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t b = i / per_problem, rest = i % per_problem;
        const int64_t c = first + rest / d, j = rest % d;
        centroids[(b * k + c) * d + j] = load_point(x, t, (b * n + point_rows[c]) * ldx + j);
    }
}

__global__ void count_nonfinite_kernel(const void* x, int64_t ld, PointType t, int64_t rows, int64_t d, unsigned long long* count) {
    unsigned long long bad = 0;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * d; i += int64_t(gridDim.x) * blockDim.x) {
        bad += !isfinite(load_point(x, t, (i / d) * ld + i % d));
    }
    if (bad) {
        atomicAdd(count, bad);
    }
}

__global__ void fill_kernel(float* v, int64_t count, float value) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
        v[i] = value;
    }
}

unsigned warp_rows_grid(int64_t rows) {
    return unsigned((rows + 7) / 8);
}

unsigned strided_grid(int64_t items) {
    return unsigned(std::min<int64_t>((items + 255) / 256, int64_t(1) << 20));
}

/// exps[b] = split_exponent of problem b's largest |x| (max_bits: B words of scratch).
void problem_exponents(const float* x, int64_t ldx, int64_t batch, int64_t n, int64_t d, unsigned* max_bits, int32_t* exps, cudaStream_t stream) {
    cudaMemsetAsync(max_bits, 0, sizeof(unsigned) * batch, stream);
    problem_max_kernel<<<warp_rows_grid(batch * n), 256, 0, stream>>>(x, ldx, batch * n, n, d, max_bits);
    exponents_kernel<<<strided_grid(batch), 256, 0, stream>>>(max_bits, batch, exps);
}

} // namespace

void convert_rows(const void* src, int64_t ld_src, PointType t, int64_t rows, int64_t d, void* dst, int64_t ld_dst, Operand op, float* norms, cudaStream_t stream) {
    if (rows == 0) {
        return;
    }
    convert_rows_kernel<<<warp_rows_grid(rows), 256, 0, stream>>>(src, ld_src, t, rows, d, dst, ld_dst, op, norms);
    check_launch("convert_rows");
}

void split_exponents(const float* x, int64_t ldx, int64_t batch, int64_t n, int64_t d, int32_t* exps, cudaStream_t stream) {
    unsigned* max_bits = nullptr;
    FAISS_THROW_IF_NOT_FMT(cudaMallocAsync(&max_bits, sizeof(unsigned) * batch, stream) == cudaSuccess,
                           "split_exponents: cannot allocate %zd bytes of GPU memory", sizeof(unsigned) * batch);
    problem_exponents(x, ldx, batch, n, d, max_bits, exps, stream);
    const cudaError_t launch = cudaGetLastError();
    cudaFreeAsync(max_bits, stream);
    FAISS_THROW_IF_NOT_FMT(launch == cudaSuccess, "split_exponents failed: %s", cudaGetErrorString(launch));
}

void split_points(const float* x, int64_t ldx, int64_t batch, int64_t n, int64_t d, int d_pad, const int32_t* exps, void* dst, float* norms, cudaStream_t stream) {
    split_points_kernel<<<warp_rows_grid(batch * n), 256, 0, stream>>>(x, ldx, batch * n, n, d, d_pad, exps,
                                                                     static_cast<__half*>(dst), norms);
    check_launch("split_points");
}

void split_centroids(const float* c, int64_t batch, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, bool l2, void* dst, float* bias, float* multiplier, cudaStream_t stream) {
    split_centroids_kernel<<<warp_rows_grid(batch * k), 256, 0, stream>>>(
            c, batch * k, k, d, d_pad, point_exps, l2, static_cast<__half*>(dst), bias, multiplier);
    check_launch("split_centroids");
}

void scale_centroids(const float* c, int64_t batch, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, bool l2, unsigned* max_bits, int32_t* exps, void* dst, float* bias, unsigned* norm_max_bits, cudaStream_t stream) {
    problem_exponents(c, d, batch, k, d, max_bits, exps, stream);
    cudaMemsetAsync(norm_max_bits, 0, sizeof(unsigned) * batch, stream);
    scale_centroids_kernel<<<warp_rows_grid(batch * k), 256, 0, stream>>>(c, batch * k, k, d, d_pad, point_exps, exps, l2,
                                                                        static_cast<__half*>(dst), bias, norm_max_bits);
    check_launch("scale_centroids");
}

void pad_terms(const float* src, int64_t batch, int64_t k, int64_t k_pad, float fill, float* dst, cudaStream_t stream) {
    pad_terms_kernel<<<strided_grid(batch * k_pad), 256, 0, stream>>>(src, batch, k, k_pad, fill, dst);
    check_launch("pad_terms");
}

bool all_finite(const void* x, int64_t ld, PointType t, int64_t rows, int64_t d, cudaStream_t stream) {
    unsigned long long* count = nullptr;
    FAISS_THROW_IF_NOT_MSG(cudaMallocAsync(&count, sizeof(*count), stream) == cudaSuccess,
                           "all_finite: cannot allocate 8 bytes of GPU memory");
    unsigned long long host = 0;
    cudaMemsetAsync(count, 0, sizeof(*count), stream);
    count_nonfinite_kernel<<<strided_grid(rows * d), 256, 0, stream>>>(x, ld, t, rows, d, count);
    const cudaError_t launch = cudaGetLastError();
    cudaMemcpyAsync(&host, count, sizeof(host), cudaMemcpyDeviceToHost, stream);
    cudaFreeAsync(count, stream);
    const cudaError_t sync = cudaStreamSynchronize(stream);
    FAISS_THROW_IF_NOT_FMT(launch == cudaSuccess && sync == cudaSuccess, "all_finite failed: %s",
                           cudaGetErrorString(launch != cudaSuccess ? launch : sync));
    return host == 0;
}

void zero_floats(float* v, int64_t count, cudaStream_t stream) {
    fill_kernel<<<strided_grid(count), 256, 0, stream>>>(v, count, 0.0f);
    check_launch("zero_floats");
}

void post_process_rows(float* centroids, int64_t rows, int64_t d, bool spherical, bool round_to_int, cudaStream_t stream) {
    if (!spherical && !round_to_int) {
        return;
    }
    post_process_kernel<<<warp_rows_grid(rows), 256, 0, stream>>>(centroids, rows, d, spherical, round_to_int);
    check_launch("post_process");
}

void gather_centroids(const void* x, int64_t ldx, PointType t, int64_t batch, int64_t n, int64_t d, int64_t k, const int32_t* point_rows, int64_t first, float* centroids, cudaStream_t stream) {
    if (first >= k) {
        return;
    }
    gather_kernel<<<strided_grid(batch * (k - first) * d), 256, 0, stream>>>(x, ldx, t, batch, n, d, k, point_rows, first, centroids);
    check_launch("gather_centroids");
}

} // namespace kernels
} // namespace faiss_flash

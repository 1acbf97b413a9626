#include "operands.cuh"
#include "launch_check.h"
#include "point_load.cuh"

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

/// One warp per row: convert, zero the padding, sum the squares in a fixed
/// lane order (deterministic).
__global__ void convert_rows_kernel(const void* src, int64_t ld_src, PointType t, int64_t rows, int64_t d, void* dst, int64_t ld_dst, Operand op, float* norms) {
    const int lane = threadIdx.x % 32;
    const int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    if (r >= rows) {
        return;
    }
    float sq = 0;
    for (int64_t j = lane; j < ld_dst; j += 32) {
        const float v = j < d ? load_point(src, t, r * ld_src + j) : 0.0f;
        const float seen = dst ? store_operand(dst, op, r * ld_dst + j, v) : v;
        sq += seen * seen;
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) {
        sq += __shfl_xor_sync(0xffffffff, sq, off);
    }
    if (norms && lane == 0) {
        norms[r] = sq;
    }
}

__global__ void post_process_kernel(float* c, int64_t rows, int64_t d, bool spherical, bool round_to_int) {
    const int lane = threadIdx.x % 32;
    const int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    if (r >= rows) {
        return;
    }
    float* row = c + r * d;
    if (spherical) {
        double sq = 0;
        for (int64_t j = lane; j < d; j += 32) {
            sq += double(row[j]) * row[j];
        }
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
            sq += __shfl_xor_sync(0xffffffff, sq, off);
        }
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

} // namespace

void convert_rows(const void* src, int64_t ld_src, PointType t, int64_t rows, int64_t d, void* dst, int64_t ld_dst, Operand op, float* norms, cudaStream_t stream) {
    if (rows == 0) {
        return;
    }
    convert_rows_kernel<<<warp_rows_grid(rows), 256, 0, stream>>>(src, ld_src, t, rows, d, dst, ld_dst, op, norms);
    check_launch("convert_rows");
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

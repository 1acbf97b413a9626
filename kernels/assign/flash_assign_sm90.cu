// FlashAssign on Hopper (sm_90a), 16-bit operands: a warp-specialised CTA.
// One producer warp streams point and centroid tiles with the TMA into a
// 4-stage ring of 128B-swizzled shared-memory buffers (mbarrier handshakes);
// two consumer warpgroups each own 64 points and run wgmma m64n256k16 on
// every centroid tile, then fold the 64 x 256 scores into their running
// argmin while the other warpgroup keeps the tensor cores busy.

#include "flash_assign_sm90.cuh"

#include <cmath>

#include <cudaTypedefs.h>

#include <faiss/impl/FaissAssert.h>

#include "../block/tma_sm90.cuh"
#include "../warp/wgmma_sm90.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

struct Sm90AssignPolicy {
    static constexpr int kConsumers = 2;         // warpgroups of 64 points
    static constexpr int kBlockM = 64 * kConsumers;
    static constexpr int kBlockN = 256;          // one wgmma N
    static constexpr int kBlockK = 64;           // 128 bytes of 16-bit values: one swizzle row
    static constexpr int kStages = 4;
    static constexpr int kThreads = 128 * (1 + kConsumers);
    static constexpr int kTileABytes = kBlockM * kBlockK * 2;
    static constexpr int kTileBBytes = kBlockN * kBlockK * 2;
    static constexpr int kStageBytes = kTileABytes + kTileBBytes;
    static constexpr size_t kSmemBytes =
            1024 /* alignment slack */ + size_t(kStages) * kStageBytes + 2 * kStages * sizeof(uint64_t) +
            kBlockM * sizeof(float);
};

[[maybe_unused]] __device__ __forceinline__ bool better(float s, int32_t i, float best_s, int32_t best_i) {
    return s < best_s || (s == best_s && i < best_i);
}

template <typename Half, bool kInnerProduct>
__global__ void __launch_bounds__(Sm90AssignPolicy::kThreads, 1) flash_assign_sm90_kernel(
        const __grid_constant__ CUtensorMap map_x,
        const __grid_constant__ CUtensorMap map_c,
        AssignArgs args,
        int64_t m_tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using P = Sm90AssignPolicy;
    extern __shared__ unsigned char smem_raw[];
    // The 128B swizzle pattern repeats every 1024 bytes: align the ring.
    unsigned char* ring = reinterpret_cast<unsigned char*>(
            (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
    uint64_t* full = reinterpret_cast<uint64_t*>(ring + P::kStages * P::kStageBytes);
    uint64_t* empty = full + P::kStages;
    float* row_dist = reinterpret_cast<float*>(empty + P::kStages);

    const int warpgroup = threadIdx.x / 128, t = threadIdx.x % 128;
    const int64_t b = blockIdx.x / m_tiles;
    const int64_t row0 = (blockIdx.x % m_tiles) * P::kBlockM;
    const int k_chunks = (args.d_pad + P::kBlockK - 1) / P::kBlockK;
    const int64_t n_tiles = (args.k + P::kBlockN - 1) / P::kBlockN;
    const int64_t steps = n_tiles * k_chunks;

    if (threadIdx.x == 0) {
        for (int s = 0; s < P::kStages; s++) {
            mbarrier_init(&full[s], 1);
            mbarrier_init(&empty[s], P::kConsumers);
        }
        fence_barrier_init();
    }
    __syncthreads();

    if (warpgroup == 0) {
        // Producer: one thread issues every TMA load. Rows past this
        // problem's n (or k) belong to the next problem or are zero-filled
        // past the tensor; the consumers mask them.
        if (t == 0) {
            for (int64_t step = 0; step < steps; step++) {
                const int s = int(step % P::kStages);
                if (step >= P::kStages) {
                    mbarrier_wait(&empty[s], uint32_t((step / P::kStages - 1) & 1));
                }
                const int col = int(step % k_chunks) * P::kBlockK;
                const int64_t tile = step / k_chunks;
                mbarrier_arrive_expect_tx(&full[s], P::kStageBytes);
                unsigned char* stage = ring + s * P::kStageBytes;
                tma_load_2d(stage, &map_x, col, int32_t(b * args.n + row0), &full[s]);
                tma_load_2d(stage + P::kTileABytes, &map_c, col, int32_t(b * args.k + tile * P::kBlockN), &full[s]);
            }
        }
    } else {
        const int consumer = warpgroup - 1, warp = t / 32, lane = t % 32;
        const float* bias = args.c_bias + b * args.k;
        float acc[128];
        float best[2] = {INFINITY, INFINITY};
        int32_t best_idx[2] = {0, 0};
        for (int64_t step = 0; step < steps; step++) {
            const int s = int(step % P::kStages);
            const int kc = int(step % k_chunks);
            mbarrier_wait(&full[s], uint32_t((step / P::kStages) & 1));
            unsigned char* stage = ring + s * P::kStageBytes;
            const uint64_t desc_a = wgmma_descriptor(stage + consumer * 64 * 128);
            const uint64_t desc_b = wgmma_descriptor(stage + P::kTileABytes);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < P::kBlockK / 16; kk++) {
                wgmma_m64n256k16<Half>(acc, wgmma_descriptor_k(desc_a, kk), wgmma_descriptor_k(desc_b, kk),
                                       kc > 0 || kk > 0);
            }
            wgmma_commit();
            wgmma_wait_all();
            if (t == 0) {
                mbarrier_arrive(&empty[s]); // this warpgroup is done reading stage s
            }
            if (kc == k_chunks - 1) {
                // Epilogue of one centroid tile, increasing columns per thread.
                const int64_t col0 = (step / k_chunks) * P::kBlockN + 2 * (lane % 4);
#pragma unroll
                for (int j = 0; j < P::kBlockN / 8; j++) {
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int64_t col = col0 + 8 * j + e;
                        const float cb = col < args.k ? __ldg(bias + col) : INFINITY;
#pragma unroll
                        for (int h = 0; h < 2; h++) {
                            const float dot = acc[4 * j + 2 * h + e];
                            const float score = kInnerProduct ? cb - dot : fmaf(-2.0f, dot, cb);
                            if (score < best[h]) {
                                best[h] = score;
                                best_idx[h] = int32_t(col);
                            }
                        }
                    }
                }
            }
        }
        // The 4 lanes of a quad share rows; one warpgroup owns all columns
        // of its 64 rows, so the quad reduction is the last one.
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float sc = best[h];
            int32_t i = best_idx[h];
#pragma unroll
            for (int off = 1; off < 4; off *= 2) {
                const float os = __shfl_xor_sync(0xffffffff, sc, off);
                const int32_t oi = __shfl_xor_sync(0xffffffff, i, off);
                if (better(os, oi, sc, i)) {
                    sc = os;
                    i = oi;
                }
            }
            const int r = consumer * 64 + warp * 16 + lane / 4 + 8 * h;
            const int64_t row = row0 + r;
            if (lane % 4 == 0) {
                float dist = 0;
                if (row < args.n) {
                    const int64_t out = b * args.n + row;
                    dist = kInnerProduct ? -sc : fmaxf(args.x_norms[out] + sc, 0.0f);
                    args.labels[out] = i;
                    if (args.distances) {
                        args.distances[out] = dist;
                    }
                }
                row_dist[r] = dist;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0; // fixed order: deterministic
        for (int r = 0; r < P::kBlockM; r++) {
            total += row_dist[r];
        }
        args.obj_partials[blockIdx.x] = total;
    }
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q;
        const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
        FAISS_THROW_IF_NOT_MSG(err == cudaSuccess && q == cudaDriverEntryPointSuccess && p,
                               "FlashAssign sm90: cuTensorMapEncodeTiled not available in the driver");
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

/// 2D map over `rows` rows of `ld` 16-bit elements (d_pad used), boxes of
/// kBlockK columns x box_rows rows, 128B swizzle, zero fill out of bounds.
CUtensorMap make_map(const void* base, CUtensorMapDataType type, int64_t rows, int64_t ld, int d_pad, int box_rows) {
    CUtensorMap map;
    const cuuint64_t dims[2] = {cuuint64_t(d_pad), cuuint64_t(rows)};
    const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};
    const cuuint32_t box[2] = {cuuint32_t(Sm90AssignPolicy::kBlockK), cuuint32_t(box_rows)};
    const cuuint32_t elem_strides[2] = {1, 1};
    const CUresult r = tensor_map_encoder()(
            &map, type, 2, const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    FAISS_THROW_IF_NOT_FMT(r == CUDA_SUCCESS, "FlashAssign sm90: cuTensorMapEncodeTiled failed (%d)", int(r));
    return map;
}

template <typename Half, bool kInnerProduct>
void launch(const AssignArgs& args, cudaStream_t stream) {
    using P = Sm90AssignPolicy;
    auto kernel = flash_assign_sm90_kernel<Half, kInnerProduct>;
    const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(P::kSmemBytes));
    FAISS_THROW_IF_NOT_FMT(attr == cudaSuccess, "FlashAssign sm90: cannot reserve %zd bytes of shared memory: %s",
                           P::kSmemBytes, cudaGetErrorString(attr));
    const CUtensorMapDataType type =
            std::is_same_v<Half, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    const CUtensorMap map_x = make_map(args.x, type, args.batch * args.n, args.ldx, args.d_pad, P::kBlockM);
    const CUtensorMap map_c = make_map(args.c, type, args.batch * args.k, args.ldc, args.d_pad, P::kBlockN);
    const int64_t m_tiles = (args.n + P::kBlockM - 1) / P::kBlockM;
    kernel<<<dim3(unsigned(args.batch * m_tiles)), P::kThreads, P::kSmemBytes, stream>>>(map_x, map_c, args, m_tiles);
    const cudaError_t err = cudaGetLastError();
    FAISS_THROW_IF_NOT_FMT(err == cudaSuccess, "FlashAssign sm90 launch failed: %s", cudaGetErrorString(err));
}

template <typename Half>
void launch_metric(const AssignArgs& args, cudaStream_t stream) {
    if (args.inner_product) {
        launch<Half, true>(args, stream);
    } else {
        launch<Half, false>(args, stream);
    }
}

} // namespace

bool sm90_assign_supported(const AssignArgs& args, Operand op) {
    if (op != Operand::F16 && op != Operand::BF16) {
        return false;
    }
    // TMA coordinates are 32-bit; tiny d or k leave most of a wgmma idle.
    if (args.batch * args.n >= (int64_t(1) << 31) || args.batch * args.k >= (int64_t(1) << 31) ||
        args.d_pad < Sm90AssignPolicy::kBlockK || args.k <= 128) {
        return false;
    }
    int device = 0;
    cudaDeviceProp prop;
    if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
        return false;
    }
    cudaFuncAttributes attr;
    // The kernel has a body only in the sm_90a build: check what was loaded.
    if (cudaFuncGetAttributes(&attr, flash_assign_sm90_kernel<__half, false>) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return prop.major == 9 && attr.binaryVersion == 90;
}

void flash_assign_sm90(const AssignArgs& args, Operand op, cudaStream_t stream) {
    if (op == Operand::F16) {
        launch_metric<__half>(args, stream);
    } else {
        launch_metric<__nv_bfloat16>(args, stream);
    }
}

} // namespace kernels
} // namespace faiss_flash

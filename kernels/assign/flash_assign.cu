// FlashAssign kernel family: agent (tile policy + mainloop + epilogue) and
// its launch helper. One CTA owns kBlockM points of one problem and sweeps
// every centroid tile of that problem; a flat (step = centroid tile x K
// chunk) cp.async pipeline keeps the tensor cores fed across tile borders.

#include "flash_assign.cuh"
#include "flash_assign_sm90.cuh"

#include <cmath>

#include <faiss/impl/FaissAssert.h>

#include "../block/argmin.cuh"
#include "../block/strided_sum.cuh"
#include "../block/tile_copy.cuh"
#include "../util/launch_check.h"
#include "../warp/mma_sm80.cuh"
#include "../warp/warp_reduce.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

/** Tile shapes: 8 warps as 2 (M) x 4 (N), K chunks of 128 bytes per row,
 * 3 stages in flight. kBlockN = 256 gives each warp a 64 x 64 tile: 4 KB of
 * fragments per 32 MMAs, the ratio shared memory can sustain at the tensor
 * rate (64 x 32 tiles need 1.5x the bandwidth). kBlockN = 128 serves small
 * K, where a 256-wide tile would mostly multiply padding.
 */
template <typename Recipe, int kBlockN_>
struct AssignTilePolicy {
    using Element = typename Recipe::Element;
    static constexpr int kBlockM = 128;
    static constexpr int kBlockN = kBlockN_;
    static constexpr int kBlockK = 128 / sizeof(Element);
    static constexpr int kStages = 3;
    static constexpr int kWarpsM = 2;
    static constexpr int kWarpsN = 4;
    static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
    static constexpr int kWarpM = kBlockM / kWarpsM;
    static constexpr int kWarpN = kBlockN / kWarpsN;
    static constexpr int kMmaM = kWarpM / 16;
    static constexpr int kMmaN = kWarpN / 8;
    /// 16 bytes of padding per row: ldmatrix / lds rows hit distinct banks.
    static constexpr int kLdSmem = kBlockK + 16 / sizeof(Element);
    static constexpr int kStageElems = (kBlockM + kBlockN) * kLdSmem;
    static constexpr size_t kSmemBytes = size_t(kStages) * kStageElems * sizeof(Element);
    /// Wide tiles and 3xTF32 (hi and lo fragments) need the registers of one
    /// CTA per SM; the narrow 16-bit/tf32 tiles fit two.
    static constexpr int kMinBlocksPerSm = (Recipe::kFragmentRegsHeavy || kBlockN > 128) ? 1 : 2;
};

/// K up to this uses the narrow centroid tile.
constexpr int64_t kNarrowTileMaxK = 160;

template <typename Recipe, int kBlockN, bool kInnerProduct>
__global__ void __launch_bounds__(AssignTilePolicy<Recipe, kBlockN>::kThreads, AssignTilePolicy<Recipe, kBlockN>::kMinBlocksPerSm)
        flash_assign_kernel(AssignArgs args, int64_t m_tiles) {
    using P = AssignTilePolicy<Recipe, kBlockN>;
    using T = typename P::Element;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* smem = reinterpret_cast<T*>(smem_raw);

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int wm = warp / P::kWarpsN, wn = warp % P::kWarpsN;
    const int64_t b = blockIdx.x / m_tiles;
    const int64_t row0 = (blockIdx.x % m_tiles) * P::kBlockM;

    const T* x = static_cast<const T*>(args.x) + b * args.n * args.ldx;
    const T* c = static_cast<const T*>(args.c) + b * args.k * args.ldc;
    const float* bias = args.c_bias + b * args.k;

    const int k_chunks = (args.d_pad + P::kBlockK - 1) / P::kBlockK;
    const int64_t n_tiles = (args.k + P::kBlockN - 1) / P::kBlockN;
    const int64_t steps = n_tiles * k_chunks;

    auto issue_step = [&](int64_t step) {
        if (step < steps) {
            T* stage = smem + (step % P::kStages) * P::kStageElems;
            const int64_t tile = step / k_chunks;
            const int col0 = int(step % k_chunks) * P::kBlockK;
            copy_tile_async<T, P::kBlockM, P::kBlockK, P::kLdSmem, P::kThreads>(
                    stage, x, args.ldx, row0, args.n, col0, args.d_pad, tid);
            copy_tile_async<T, P::kBlockN, P::kBlockK, P::kLdSmem, P::kThreads>(
                    stage + P::kBlockM * P::kLdSmem, c, args.ldc, tile * P::kBlockN, args.k, col0,
                    args.d_pad, tid);
        }
        cp_async_commit(); // empty groups keep the wait count uniform
    };

    float acc[P::kMmaM][P::kMmaN][4];
    float best[P::kMmaM][2];
    int32_t best_idx[P::kMmaM][2];
#pragma unroll
    for (int mi = 0; mi < P::kMmaM; mi++) {
        best[mi][0] = best[mi][1] = INFINITY;
        best_idx[mi][0] = best_idx[mi][1] = 0;
#pragma unroll
        for (int ni = 0; ni < P::kMmaN; ni++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[mi][ni][e] = 0;
            }
        }
    }

#pragma unroll
    for (int s = 0; s < P::kStages - 1; s++) {
        issue_step(s);
    }

    for (int64_t step = 0; step < steps; step++) {
        cp_async_wait<P::kStages - 2>();
        __syncthreads();
        issue_step(step + P::kStages - 1);

        // Mainloop body: one K chunk of this warp's 64 x 32 tile.
        const T* a_tile = smem + (step % P::kStages) * P::kStageElems + wm * P::kWarpM * P::kLdSmem;
        const T* b_tile = smem + (step % P::kStages) * P::kStageElems + (P::kBlockM + wn * P::kWarpN) * P::kLdSmem;
#pragma unroll
        for (int kk = 0; kk < P::kBlockK; kk += Recipe::kStepK) {
            typename Recipe::FragB fb[P::kMmaN];
#pragma unroll
            for (int ni = 0; ni < P::kMmaN; ni += 2) {
                Recipe::load_b2(fb[ni], fb[ni + 1], b_tile + ni * 8 * P::kLdSmem + kk, P::kLdSmem, lane);
            }
#pragma unroll
            for (int mi = 0; mi < P::kMmaM; mi++) {
                typename Recipe::FragA fa;
                Recipe::load_a(fa, a_tile + mi * 16 * P::kLdSmem + kk, P::kLdSmem, lane);
#pragma unroll
                for (int ni = 0; ni < P::kMmaN; ni++) {
                    Recipe::mma(acc[mi][ni], fa, fb[ni]);
                }
            }
        }

        if (step % k_chunks == k_chunks - 1) {
            // Epilogue of one centroid tile: scores -> running argmin, in
            // increasing column order per thread (strict '<' keeps the lowest
            // index on ties), then clear the accumulators.
            // 32-bit column arithmetic: k < 2^31 (checked at launch).
            const int32_t tile_col0 = int32_t((step / k_chunks) * P::kBlockN) + wn * P::kWarpN;
            const int32_t k32 = int32_t(args.k);
#pragma unroll
            for (int ni = 0; ni < P::kMmaN; ni++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int32_t col = tile_col0 + ni * 8 + (lane % 4) * 2 + e;
                    const float cb = col < k32 ? __ldg(bias + col) : INFINITY;
#pragma unroll
                    for (int mi = 0; mi < P::kMmaM; mi++) {
#pragma unroll
                        for (int h = 0; h < 2; h++) {
                            const float dot = acc[mi][ni][h * 2 + e];
                            const float score = kInnerProduct ? cb - dot : fmaf(-2.0f, dot, cb);
                            if (score < best[mi][h]) {
                                best[mi][h] = score;
                                best_idx[mi][h] = col;
                            }
                        }
                    }
                }
            }
#pragma unroll
            for (int mi = 0; mi < P::kMmaM; mi++) {
#pragma unroll
                for (int ni = 0; ni < P::kMmaN; ni++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        acc[mi][ni][e] = 0;
                    }
                }
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();

    // Final reduction: the 4 lanes of a quad share rows, then the kWarpsN
    // warps of a row band, through shared memory (the pipeline is drained).
    float* red_score = reinterpret_cast<float*>(smem_raw);
    int32_t* red_idx = reinterpret_cast<int32_t*>(red_score + P::kWarpsN * P::kBlockM);
#pragma unroll
    for (int mi = 0; mi < P::kMmaM; mi++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float s = best[mi][h];
            int32_t i = best_idx[mi][h];
            quad_argmin(s, i);
            if (lane % 4 == 0) {
                const int r = wm * P::kWarpM + mi * 16 + h * 8 + lane / 4;
                red_score[wn * P::kBlockM + r] = s;
                red_idx[wn * P::kBlockM + r] = i;
            }
        }
    }
    __syncthreads();

    double score_share = 0;
    if (tid < P::kBlockM) {
        float s = red_score[tid];
        int32_t i = red_idx[tid];
#pragma unroll
        for (int w = 1; w < P::kWarpsN; w++) {
            if (better(red_score[w * P::kBlockM + tid], red_idx[w * P::kBlockM + tid], s, i)) {
                s = red_score[w * P::kBlockM + tid];
                i = red_idx[w * P::kBlockM + tid];
            }
        }
        const int64_t row = row0 + tid;
        if (row < args.n) {
            const int64_t out = b * args.n + row;
            args.labels[out] = i;
            if (args.distances) {
                // L2: ||x||² + (||c||² - 2<x,c>), negative round-off -> 0.
                args.distances[out] = kInnerProduct ? -s : fmaxf(args.x_norms[out] + s, 0.0f);
            }
            score_share = kInnerProduct ? -s : s;
        }
    }
    // Deterministic CTA sum: fixed shuffle tree, then warps in order.
    __syncthreads();
    double* warp_sums = reinterpret_cast<double*>(smem_raw);
    score_share = warp_sum(score_share);
    if (lane == 0) {
        warp_sums[warp] = score_share;
    }
    __syncthreads();
    if (tid == 0) {
        double total = 0;
        for (int w = 0; w < P::kBlockM / 32; w++) {
            total += warp_sums[w];
        }
        args.obj_partials[blockIdx.x] = total;
    }
}

template <typename Recipe, int kBlockN, bool kInnerProduct>
int64_t launch(const AssignArgs& args, cudaStream_t stream) {
    using P = AssignTilePolicy<Recipe, kBlockN>;
    auto kernel = flash_assign_kernel<Recipe, kBlockN, kInnerProduct>;
    const cudaError_t attr = cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(P::kSmemBytes));
    FAISS_THROW_IF_NOT_FMT(
            attr == cudaSuccess, "FlashAssign: cannot reserve %zd bytes of shared memory: %s",
            P::kSmemBytes, cudaGetErrorString(attr));
    const int64_t m_tiles = (args.n + P::kBlockM - 1) / P::kBlockM;
    kernel<<<dim3(unsigned(args.batch * m_tiles)), P::kThreads, P::kSmemBytes, stream>>>(args, m_tiles);
    check_launch("FlashAssign");
    return m_tiles;
}

template <typename Recipe, int kBlockN>
int64_t launch_metric(const AssignArgs& args, cudaStream_t stream) {
    return args.inner_product ? launch<Recipe, kBlockN, true>(args, stream) : launch<Recipe, kBlockN, false>(args, stream);
}

template <typename Recipe>
int64_t launch_tile(const AssignArgs& args, cudaStream_t stream) {
    return args.k <= kNarrowTileMaxK ? launch_metric<Recipe, 128>(args, stream) : launch_metric<Recipe, 256>(args, stream);
}

/// sums[b] = the sum of problem b's n norms: one block per problem,
/// strided per-thread fp64 sums, then a fixed tree.
constexpr int kNormSumThreads = 256;

__global__ void __launch_bounds__(kNormSumThreads) norm_sums_kernel(const float* x_norms, int64_t n, double* sums) {
    __shared__ double s[kNormSumThreads];
    const int64_t b = blockIdx.x;
    s[threadIdx.x] = strided_sum<kNormSumThreads, 8>(x_norms + b * n, n, threadIdx.x);
    __syncthreads();
    for (int stride = kNormSumThreads / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            s[threadIdx.x] += s[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        sums[b] = s[0];
    }
}

} // namespace

int64_t objective_partials_bound(const AssignArgs& args) {
    constexpr int kRows = AssignTilePolicy<RecipeHalf<__half>, 128>::kBlockM;
    static_assert(kRows == 128 && AssignTilePolicy<RecipeTf32<true>, 256>::kBlockM == kRows,
                  "the bound counts 128-row tiles");
    return args.batch * ((args.n + kRows - 1) / kRows + 1);
}

int64_t flash_assign(const AssignArgs& args, Operand op, cudaStream_t stream) {
    FAISS_THROW_IF_NOT_FMT(objective_partials_bound(args) < (int64_t(1) << 31),
                           "FlashAssign: %ld point tiles exceed the grid limit", long(objective_partials_bound(args)));
    FAISS_THROW_IF_NOT_FMT(args.k < (int64_t(1) << 31), "FlashAssign: k=%ld must be < 2^31 (int32 labels)",
                           long(args.k));
    if (sm90_assign_supported(args, op)) {
        return flash_assign_sm90(args, op, stream);
    }
    FAISS_THROW_IF_NOT_MSG(!args.margins && !args.rows_valid,
                           "FlashAssign: margins and rows_valid are taken by the Hopper kernels only");
    switch (op) {
        case Operand::F16:
            return launch_tile<RecipeHalf<__half>>(args, stream);
        case Operand::BF16:
            return launch_tile<RecipeHalf<__nv_bfloat16>>(args, stream);
        case Operand::TF32:
            return launch_tile<RecipeTf32<false>>(args, stream);
        case Operand::TF32x3:
            return launch_tile<RecipeTf32<true>>(args, stream);
        case Operand::F16x3:
            FAISS_THROW_MSG("FlashAssign: F16x3 operands run on the sm90 path only");
    }
    FAISS_THROW_MSG("FlashAssign: unknown operand");
}

void sum_point_norms(const float* x_norms, int64_t batch, int64_t n, double* sums, cudaStream_t stream) {
    norm_sums_kernel<<<unsigned(batch), kNormSumThreads, 0, stream>>>(x_norms, n, sums);
    check_launch("sum_point_norms");
}

} // namespace kernels
} // namespace faiss_flash

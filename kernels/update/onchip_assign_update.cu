// The on-chip update with the assignment fused in (sm_90a): a block holds
// its problem's centroids, assigns each chunk the TMA staged on wgmma and
// adds it to the sums as one wgmma product with the chunk's one-hot
// matrix; its launch and entry points (see onchip_update.cuh; the shared
// pieces are in onchip_slices.cuh).

#include <climits>

#include "onchip_slices.cuh"
#include "../block/argmin.cuh"
#include "../block/named_barrier.cuh"
#include "../block/tma_sm90.cuh"
#include "../util/tensor_map.h"
#include "../warp/wgmma_sm90.cuh"
#include "../warp/warp_reduce.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

using namespace onchip;

/** Fused assignment: stages problem b's centroids (the assignment's
 * 16-bit operand rows, at the points' pitch) as the caller's next cp.async
 * group, in the TMA's 128B-swizzled layout of the points (64-coordinate
 * halves, 16-byte piece j of row r at piece j ^ (r % 8) of its 128-byte
 * row), zeros past k and past d up to the dimension tiles' end; and their
 * score bias (L2: ||c||², IP: 0; +inf past k) into shared memory directly.
 */
[[maybe_unused]] __device__ __forceinline__ void stage_centroids(
        const OnChipAssign& fa,
        const SliceTask& task,
        unsigned char* smem,
        uint32_t b,
        int threads,
        int t) {
    const SmemLayout& l = task.smem;
    const int pieces = task.dim_tiles * P::kTileDims / 8, valid_pieces = task.d / 8;
    const unsigned char* c = static_cast<const unsigned char*>(fa.c) + int64_t(b) * task.k * fa.ldc * 2;
    for (int i = t; i < l.centroid_rows * pieces; i += threads) {
        const int row = i / pieces, piece = i % pieces;
        const bool valid = row < task.k && piece < valid_pieces;
        unsigned char* dst = smem + l.centroids + (piece / 8) * l.centroid_block_stride + row * l.row_stride +
                ((piece % 8) ^ (row % 8)) * 16;
        cp_async_16(dst, valid ? c + (int64_t(row) * fa.ldc + piece * 8) * 2 : c, valid);
    }
    float* bias = reinterpret_cast<float*>(smem + l.bias);
    for (int row = t; row < l.centroid_rows; row += threads) {
        bias[row] = row >= task.k ? INFINITY : fa.inner_product ? 0.0f : fa.c_bias[int64_t(b) * task.k + row];
    }
}

/// wgmma descriptor of an operand without swizzle (8 x 16-byte core
/// matrices of 128 contiguous bytes). K-major: leading = bytes to the next
/// 8 K elements, stride = to the next 8 M/N rows. MN-major: leading = to
/// the next 8 K rows, stride = to the next 8 M/N elements (CUTLASS's
/// INTERLEAVE layouts).
[[maybe_unused]] __device__ __forceinline__ uint64_t piece_major_descriptor(const void* smem_tile, int leading, int stride) {
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_tile));
    uint64_t desc = (addr & 0x3FFFF) >> 4;
    desc |= uint64_t((leading >> 4) & 0x3FFF) << 16;
    desc |= uint64_t((stride >> 4) & 0x3FFF) << 32;
    return desc; // swizzle mode 0: none
}

/// Columns of the fused assignment's first part: 64, or 40 where k <= 104
/// (columns past k are padding: products and fold steps that decide
/// nothing). The second part has 64. Narrow first: the other order makes
/// ptxas spill (80 bytes at d = 128).
constexpr int kWidePart = 64;
constexpr int kNarrowPart = 40;

/** One column part (8·kBlocks8 centroids) of a fused assignment's fold:
 * each of the lane's two rows (h) keeps its best (score, column) over the
 * part's columns in increasing order with a strict '<' (the lowest column
 * on ties), in two chains by column parity e for instruction-level
 * parallelism; the caller merges the two chains by the same order
 * (`better`).
 * score = bias - 2<x,c> for L2 (mult -2), -<x,c> for IP (mult -1).
 */
template <int kBlocks8>
[[maybe_unused]] __device__ __forceinline__ void fold_part(
        const float (&acc)[4 * kBlocks8],
        const float* bias,
        float mult,
        int col0,
        float (&best_score)[2][2],
        int32_t (&best_col)[2][2]) {
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int j = 0; j < kBlocks8; j++) {
        const int col = col0 + 8 * j + 2 * (lane % 4);
        const float2 cb = *reinterpret_cast<const float2*>(bias + col);
#pragma unroll
        for (int e = 0; e < 2; e++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float score = fmaf(mult, acc[4 * j + 2 * h + e], e == 0 ? cb.x : cb.y);
                if (score < best_score[h][e]) {
                    best_score[h][e] = score;
                    best_col[h][e] = col + e;
                }
            }
        }
    }
}

/** Fused assignment of the staged chunk (128 rows) by the assign
 * warpgroups, 64 rows each: two wgmma groups over the kDimTiles·2 k16
 * steps, one per part of the centroid columns (kFirstPart, then 64;
 * points and centroids both in the TMA's 128B-swizzled K-major layout),
 * so that the first part's fold runs beside the second part's products;
 * each row's argmin over the columns (fold_part; then the quad's lowest
 * index on ties, as every assignment kernel). Writes the labels to fa.labels,
 * counts them, and sets the chunk's rows in the one-hot matrix after
 * clearing the entries this lane set in the same buffer two chunks before
 * (set_cols: in, those columns, -1 for none; out, this chunk's). From
 * the block's second chunk on (g > 0), signals the end of its products
 * (kBarProducts + g % 2): the sums of chunk g - 1 wait for it, so that
 * they never slow this critical path's products on the tensor cores.
 * Returns the sum of the scores of the rows this lane wrote (IP sums
 * -score).
 */
template <typename T, int kDimTiles, int kFirstPart>
__device__ __forceinline__ double assign_chunk(
        const OnChipAssign& fa,
        const SliceTask& task,
        unsigned char* smem,
        int stage,
        unsigned char* one_hot,
        int32_t (&set_cols)[2],
        int rows,
        int64_t row0,
        int64_t g) {
    double written = 0;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    const SmemLayout& l = task.smem;
    const int t = threadIdx.x % 128, lane = t % 32;
    const unsigned char* points = smem + l.points + stage * l.stage_bytes;
    const float* bias = reinterpret_cast<const float*>(smem + l.bias);
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + l.counts);
    const float mult = fa.inner_product ? -1.0f : -2.0f;
    constexpr uint16_t kOne = std::is_same_v<T, __half> ? 0x3c00u : 0x3f80u;
    const int m0 = 64 * int(threadIdx.x / 128); // this warpgroup's 64 rows
    float acc_first[kFirstPart / 2], acc_second[kWidePart / 2];
    // The products of the column part starting at col0, as one wgmma group.
    const auto issue_part = [&](auto& acc, int col0) {
        constexpr int kCols = 2 * int(sizeof(acc) / sizeof(float));
#pragma unroll
        for (int ks = 0; ks < kDimTiles * P::kTileDims / 16; ks++) {
            // k16 step ks: 64-coordinate half ks / 4, 32 bytes per step inside it.
            const uint64_t da = wgmma_descriptor_k(
                    wgmma_descriptor(points + (ks / 4) * l.block_stride + m0 * l.row_stride), ks % 4);
            const uint64_t db = wgmma_descriptor_k(
                    wgmma_descriptor(smem + l.centroids + (ks / 4) * l.centroid_block_stride + col0 * l.row_stride),
                    ks % 4);
            wgmma_m64k16<T, kCols>(acc, da, db, ks > 0);
        }
        wgmma_commit();
    };
    wgmma_fence();
    issue_part(acc_first, 0);
    issue_part(acc_second, kFirstPart);
    float best_score[2][2] = {{INFINITY, INFINITY}, {INFINITY, INFINITY}};
    int32_t best_col[2][2] = {{0, 1}, {0, 1}};
    wgmma_wait<1>();
    fold_part<kFirstPart / 8>(acc_first, bias, mult, 0, best_score, best_col);
    wgmma_wait<0>();
    if (g > 0) {
        // The sums of the previous chunk take the tensor cores now.
        named_barrier_arrive(P::kBarProducts + int(g % 2), P::kFusedThreads);
    }
    fold_part<kWidePart / 8>(acc_second, bias, mult, kFirstPart, best_score, best_col);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float score = best_score[h][0];
        int32_t col = best_col[h][0];
        if (better(best_score[h][1], best_col[h][1], score, col)) {
            score = best_score[h][1];
            col = best_col[h][1];
        }
        quad_argmin(score, col);
        const int r = m0 + 16 * (t / 32) + lane / 4 + 8 * h;
        if (lane % 4 == 0) {
            // one_hot[c][r], piece-major over the rows (8 rows per 16 bytes).
            unsigned char* row_entries = one_hot + (r / 8) * (P::kFusedMaxK * 16) + (r % 8) * 2;
            if (set_cols[h] >= 0) {
                *reinterpret_cast<uint16_t*>(row_entries + set_cols[h] * 16) = 0;
            }
            set_cols[h] = -1;
            if (r < rows) {
                fa.labels[row0 + r] = col;
                atomicAdd(counts + col, 1u);
                *reinterpret_cast<uint16_t*>(row_entries + col * 16) = kOne;
                set_cols[h] = col;
                written += fa.inner_product ? -score : score;
            }
        }
    }
#else
    __trap(); // the fused assignment runs on sm_90a only
#endif
    return written;
}

/// Coordinates of the fused kernel's sums: whole 64-coordinate halves
/// (the 128B-swizzled operand's N granularity); past d they add zeros.
template <int kDimTiles>
constexpr int kSumDims = P::kSwizzleDims * ((kDimTiles * P::kTileDims + P::kSwizzleDims - 1) / P::kSwizzleDims);

/// Cluster columns of the fused kernel's sums: the assignment's columns
/// (104 where k <= 104, else 128); a wgmma N only pads k to 8.
template <int kFirstPart>
constexpr int kSumCols = kFirstPart + kWidePart;

/// The sums warpgroup's accumulators: one m64 per 64-coordinate half.
template <int kDimTiles, int kFirstPart>
using SumAccumulators = float[kSumDims<kDimTiles> / 64][kSumCols<kFirstPart> / 2];

/** The sums warpgroup's product for one chunk: sums^T[N coordinates ×
 * kSumCols clusters] (an m64 accumulator per 64-coordinate half, N =
 * kSumDims) += X^T[N × 128 rows] · one_hot[128 rows × kSumCols], eight
 * k16 steps; X^T is the staged chunk read M-major (its 128B-swizzled rows:
 * coordinates contiguous), the one-hot K-major. Transposed so that the
 * clusters, not the coordinates, are the padded dimension: N pads k to 8
 * where M would pad it to 64. The first chunk of a slice overwrites
 * instead of adding.
 */
template <typename T, int kDimTiles, int kFirstPart>
__device__ __forceinline__ void sum_chunk(
        const SmemLayout& l,
        const unsigned char* points,
        const unsigned char* one_hot,
        bool first,
        SumAccumulators<kDimTiles, kFirstPart>& acc) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    wgmma_fence();
#pragma unroll
    for (int m = 0; m < kSumDims<kDimTiles> / 64; m++) {
#pragma unroll
        for (int ks = 0; ks < P::kFusedRows / 16; ks++) {
            const uint64_t da = wgmma_descriptor_mn(points + m * l.block_stride + ks * 16 * l.row_stride,
                                                    l.block_stride);
            // B: rows 16ks.. × clusters: 8-cluster groups 128 bytes apart,
            // the next 8 rows a whole piece-row (kFusedMaxK·16) on.
            const uint64_t db = piece_major_descriptor(one_hot + 2 * ks * (P::kFusedMaxK * 16), P::kFusedMaxK * 16,
                                                       128);
            wgmma_m64k16<T, kSumCols<kFirstPart>, true>(acc[m], da, db, !first || ks > 0);
        }
    }
    wgmma_commit();
    wgmma_wait<0>();
#else
    __trap();
#endif
}

/** The assignment fused into the on-chip update, one block per SM of
 * three warpgroups over the block's chunks g = 0, 1, ... (its slices in
 * turn):
 * - two assign warpgroups assign each chunk (assign_chunk; a slice's
 *   first chunk reloads the problem's centroids), count its clusters and
 *   write its one-hot matrix into buffer g % 2; the objective share goes
 *   to fa.obj_partials[task];
 * - the sums warpgroup has one thread issue the TMA loads of the chunks
 *   (chunk g into stage g % kFusedStages, completing on its mbarrier),
 *   adds each chunk with one product (sum_chunk) and writes the slice's
 *   partials after its last chunk.
 * The TMA leaves the warps' issue slots and load queues to the fold (with
 * per-thread cp.async, staging a chunk took the sums warpgroup as long as
 * its product). Named barriers (each completed once before it is arrived
 * at again): kBarOneHot + g % 2 (assign -> sums: its one-hot written),
 * kBarProducts + g % 2 (assign -> sums: chunk g's products done, chunk
 * g - 1 may be summed), kBarSummed + g % 2 (sums -> assign: one-hot buffer
 * g % 2 free again), kBarAssigners (within the assign warpgroups). Chunk
 * g + kFusedStages is loaded into chunk g's stage once chunk g is summed
 * (so assigned too).
 */
template <typename T, int kDimTiles, int kFirstPart>
__global__ void __launch_bounds__(P::kFusedThreads, 1) assign_slice_sums_kernel(
        const __grid_constant__ CUtensorMap map_x,
        UpdateArgs args,
        OnChipAssign fa,
        Workspace ws,
        SliceTask task) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ unsigned char smem_raw[];
    unsigned char* smem = align_to_swizzle_atom(smem_raw);
    __shared__ double s_warp_objective[4 * P::kAssignGroups];
    const SmemLayout& l = task.smem;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    constexpr int kAssignWarps = 4 * P::kAssignGroups;
    const bool assigns = warp < kAssignWarps;
    constexpr int kGroup = 128 * P::kAssignGroups; // the assign threads
    constexpr int kOneHotBytes = P::kFusedMaxK * P::kFusedRows * 2;
    uint64_t* full = reinterpret_cast<uint64_t*>(smem + l.full);
    if (threadIdx.x == 0) {
        for (int s = 0; s < P::kFusedStages; s++) {
            mbarrier_init(full + s, 1);
        }
        fence_barrier_init();
    }
    // Both one-hot buffers start at zero (then each lane clears its own
    // entries), the counts too.
    for (int i = threadIdx.x; i < 2 * kOneHotBytes / 16; i += blockDim.x) {
        reinterpret_cast<uint4*>(smem + l.one_hot)[i] = make_uint4(0, 0, 0, 0);
    }
    for (int c = threadIdx.x; c < P::kFusedMaxK; c += blockDim.x) {
        reinterpret_cast<uint32_t*>(smem + l.counts)[c] = 0;
    }
    // Generic stores before the wgmma reads of shared memory.
    fence_async_shared();
    __syncthreads();
    const int64_t tasks = args.batch * int64_t(task.slices);
    if (assigns) {
        warpgroup_reg_dealloc<P::kFusedAssignRegs>();
        const int t = threadIdx.x;
        double objective = 0;
        int64_t g = 0;
        // The one-hot columns this lane set in buffer g % 2 (this chunk's,
        // two chunks before) and in the other one (the last chunk's).
        int32_t set_cols[2] = {-1, -1}, last_set_cols[2] = {-1, -1};
        for (ChunkCursor at(task, tasks); at.valid(); at.next(task), g++) {
            unsigned char* one_hot = smem + l.one_hot + int(g % 2) * kOneHotBytes;
            if (at.c == 0) {
                // A new slice: every thread is past the previous chunk's
                // scores (the old centroids).
                named_barrier_sync(P::kBarAssigners, kGroup);
                stage_centroids(fa, task, smem, at.slice.b, kGroup, t);
                cp_async_commit();
                cp_async_wait<0>();
                fence_async_shared();
                objective = 0;
                named_barrier_sync(P::kBarAssigners, kGroup); // centroids in
            }
            if (g >= 2) {
                named_barrier_sync(P::kBarSummed + int(g % 2), P::kFusedThreads); // chunk g - 2 summed
            }
            mbarrier_wait(full + g % P::kFusedStages, uint32_t(g / P::kFusedStages) & 1);
            objective += assign_chunk<T, kDimTiles, kFirstPart>(fa, task, smem, int(g % P::kFusedStages), one_hot,
                                                                set_cols, at.slice.rows(at.c), at.slice.row0(at.c), g);
            // The one-hot's generic stores before the sums' wgmma reads.
            fence_async_shared();
            named_barrier_arrive(P::kBarOneHot + int(g % 2), P::kFusedThreads);
            for (int h = 0; h < 2; h++) {
                const int32_t c = set_cols[h];
                set_cols[h] = last_set_cols[h];
                last_set_cols[h] = c;
            }
            if (at.last_of_slice()) {
                objective = warp_sum(objective);
                if (lane == 0) {
                    s_warp_objective[warp] = objective;
                }
                named_barrier_sync(P::kBarAssigners, kGroup);
                if (t == 0) {
                    double total = 0;
                    for (int w = 0; w < kAssignWarps; w++) {
                        total += s_warp_objective[w];
                    }
                    fa.obj_partials[at.id] = total;
                }
                if (warp == 0) {
                    write_slice_counts(ws, task, at.id, smem);
                }
            }
        }
        // The last chunks' sums: every arrival is matched.
        for (int64_t h = max(int64_t(0), g - 2); h < g; h++) {
            named_barrier_sync(P::kBarSummed + int(h % 2), P::kFusedThreads);
        }
    } else {
        warpgroup_reg_alloc<P::kFusedSumRegs>();
        const bool loads = threadIdx.x == kGroup; // the thread that issues the TMA loads
        const uint32_t chunk_bytes = uint32_t(l.stage_bytes);
        const int halves = l.stage_bytes / l.block_stride;
        ChunkCursor ahead(task, tasks);
        int64_t loaded = 0; // chunk h goes to stage h % kFusedStages
        const auto load_next = [&]() {
            if (loads && ahead.valid()) {
                const int stage = int(loaded % P::kFusedStages);
                unsigned char* dst = smem + l.points + stage * l.stage_bytes;
                mbarrier_arrive_expect_tx(full + stage, chunk_bytes);
                for (int h = 0; h < halves; h++) {
                    tma_load_2d(dst + h * l.block_stride, &map_x, h * P::kSwizzleDims,
                                int32_t(ahead.slice.row0(ahead.c)), full + stage);
                }
            }
            if (ahead.valid()) {
                ahead.next(task);
                loaded++;
            }
        };
        for (int s = 0; s < P::kFusedStages; s++) {
            load_next();
        }
        SumAccumulators<kDimTiles, kFirstPart> acc;
        int64_t g = 0;
        for (ChunkCursor at(task, tasks); at.valid(); at.next(task), g++) {
            named_barrier_sync(P::kBarOneHot + int(g % 2), P::kFusedThreads);
            // The assignment's products of chunk g + 1 (the critical path)
            // first, then these: the tensor cores are not shared between them.
            ChunkCursor next = at;
            next.next(task);
            if (next.valid()) {
                named_barrier_sync(P::kBarProducts + int((g + 1) % 2), P::kFusedThreads);
            }
            // The assign warpgroups saw chunk g land; the sums' wgmma reads
            // of the TMA's writes are ordered by the same mbarrier phase.
            mbarrier_wait(full + g % P::kFusedStages, uint32_t(g / P::kFusedStages) & 1);
            sum_chunk<T, kDimTiles, kFirstPart>(l, smem + l.points + int(g % P::kFusedStages) * l.stage_bytes,
                                                smem + l.one_hot + int(g % 2) * kOneHotBytes, at.c == 0, acc);
            named_barrier_arrive(P::kBarSummed + int(g % 2), P::kFusedThreads);
            load_next(); // chunk g + kFusedStages, into chunk g's stage
            if (at.last_of_slice()) {
                // acc[m][4j + 2h + e]: coordinate 64m + 16·warp + lane/4 +
                // 8h, cluster 8j + 2·(lane % 4) + e.
                const int dim0 = 16 * (warp - kAssignWarps) + lane / 4, c0 = 2 * (lane % 4);
                float* lane_sums = ws.sums + (at.id * task.k + c0) * task.d + dim0;
#pragma unroll
                for (int j = 0; j < kSumCols<kFirstPart> / 8; j++) {
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        if (c0 + 8 * j + e < task.k) {
                            float* column = lane_sums + (8 * j + e) * task.d;
#pragma unroll
                            for (int m = 0; m < kSumDims<kDimTiles> / 64; m++) {
#pragma unroll
                                for (int h = 0; h < 2; h++) {
                                    if (dim0 + 64 * m + 8 * h < task.d) {
                                        column[64 * m + 8 * h] = acc[m][4 * j + 2 * h + e];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
#else
    __trap(); // the fused assignment runs on sm_90a only
#endif
}


template <typename T>
void launch_assign_slice_sums(
        const UpdateArgs& args,
        const OnChipAssign& assign,
        const Workspace& ws,
        const Plan& plan,
        cudaStream_t stream) {
    const CUtensorMap map_x = make_swizzled_row_map(
            args.x, std::is_same_v<T, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
            args.batch * args.n, args.ldx, args.d, P::kFusedRows, "on-chip update with the assignment");
    const bool narrow = plan.task.k <= kSumCols<kNarrowPart>;
    const auto launch = [&](auto dim_tiles) {
        constexpr int kDimTiles = decltype(dim_tiles)::value;
        const auto kernel = narrow ? assign_slice_sums_kernel<T, kDimTiles, kNarrowPart>
                                   : assign_slice_sums_kernel<T, kDimTiles, kWidePart>;
        reserve_smem(kernel, plan);
        kernel<<<plan.grid, P::kFusedThreads, size_t(plan.task.smem.total), stream>>>(map_x, args, assign, ws,
                                                                                        plan.task);
        check_launch("assign_slice_sums");
    };
    switch (plan.task.dim_tiles) {
        case 1:
            launch(std::integral_constant<int, 1>());
            break;
        case 2:
            launch(std::integral_constant<int, 2>());
            break;
        case 3:
            launch(std::integral_constant<int, 3>());
            break;
        default:
            launch(std::integral_constant<int, 4>());
    }
}


} // namespace

bool onchip_assign_fits(const UpdateArgs& args) {
    // The TMA's row coordinates are 32-bit signed.
    return onchip_fit(args).fits() && args.k <= P::kFusedMaxK &&
            TileCounts::of(args.k, args.d).dim_tiles <= P::kFusedMaxDimTiles && args.batch * args.n <= INT_MAX;
}

int64_t onchip_assign_and_sum(const UpdateArgs& args, const OnChipAssign& assign, void* workspace, cudaStream_t stream) {
    const Plan plan = make_plan(args, true);
    const Workspace ws(workspace, args.batch, args.k, args.d, plan.task.slices);
    if (args.x_type == PointType::F16) {
        launch_assign_slice_sums<__half>(args, assign, ws, plan, stream);
    } else {
        launch_assign_slice_sums<__nv_bfloat16>(args, assign, ws, plan, stream);
    }
    return plan.task.slices;
}

} // namespace kernels
} // namespace faiss_flash

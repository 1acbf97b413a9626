// The on-chip update with the assignment fused in (sm_90a): a block holds
// its problem's centroids, assigns each staged chunk on wgmma and adds it
// to the sums as one wgmma product with the chunk's one-hot matrix; its
// launch and entry points (see onchip_update.cuh; the shared pieces are in
// onchip_slices.cuh).

#include "onchip_slices.cuh"
#include "../block/argmin.cuh"
#include "../block/named_barrier.cuh"
#include "../warp/wgmma_sm90.cuh"
#include "../warp/warp_reduce.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

using namespace onchip;

/** Fused assignment: stages problem b's centroids (the assignment's
 * 16-bit operand rows, zero rows past k up to centroid_rows, at the
 * points' pitch) as the caller's next cp.async group, and their score
 * bias (L2: ||c||², IP: 0; +inf past k) into shared memory directly.
 */
__device__ __forceinline__ void stage_centroids(
        const OnChipAssign& fa,
        const SliceTask& task,
        unsigned char* smem,
        uint32_t b,
        int threads,
        int t) {
    const SmemLayout& l = task.smem;
    const int pieces = task.d / 8;
    const unsigned char* c = static_cast<const unsigned char*>(fa.c) + int64_t(b) * task.k * fa.ldc * 2;
    for (int i = t; i < l.centroid_rows * pieces; i += threads) {
        const int row = i / pieces, piece = i % pieces;
        const bool valid = row < task.k;
        cp_async_16(smem + l.centroids + row * 16 + piece * l.centroid_block_stride,
                    valid ? c + (int64_t(row) * fa.ldc + piece * 8) * 2 : c, valid);
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

/** Fused assignment of the staged chunk (128 rows) by the assign
 * warpgroup: per 64 rows one wgmma group m64n128k16 over the kDimTiles·2
 * k16 steps (points and the problem's centroids both piece-major in shared
 * memory), both groups in flight so that the first half's fold runs beside
 * the second's products; each row's argmin over the 128 columns (score =
 * bias - 2<x,c> for L2, -<x,c> for IP; columns in increasing order, strict
 * '<', then the quad's lowest index on ties, as every assignment kernel).
 * Writes the labels to fa.labels, counts them, and sets the chunk's row
 * in the one-hot matrix (zeroed by the caller). Returns the sum of the
 * scores of the rows this lane wrote (IP sums -score).
 */
template <typename T, int kDimTiles>
__device__ __forceinline__ double assign_chunk(
        const OnChipAssign& fa,
        const SliceTask& task,
        unsigned char* smem,
        int stage,
        unsigned char* one_hot,
        int rows,
        int64_t row0) {
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
    float acc[64];
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kDimTiles * P::kTileDims / 16; ks++) {
        const uint64_t da = piece_major_descriptor(points + m0 * 16 + 2 * ks * l.block_stride, l.block_stride, 128);
        const uint64_t db = piece_major_descriptor(smem + l.centroids + 2 * ks * l.centroid_block_stride,
                                                   l.centroid_block_stride, 128);
        wgmma_m64n128k16<T>(acc, da, db, ks > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    float best_score[2] = {INFINITY, INFINITY};
    int32_t best_col[2] = {0, 0};
#pragma unroll
    for (int j = 0; j < 16; j++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int col = 8 * j + 2 * (lane % 4) + e;
            const float cb = bias[col];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float score = fmaf(mult, acc[4 * j + 2 * h + e], cb);
                if (score < best_score[h]) {
                    best_score[h] = score;
                    best_col[h] = col;
                }
            }
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float score = best_score[h];
        int32_t col = best_col[h];
        quad_argmin(score, col);
        const int r = m0 + 16 * (t / 32) + lane / 4 + 8 * h;
        if (lane % 4 == 0 && r < rows) {
            fa.labels[row0 + r] = col;
            atomicAdd(counts + col, 1u);
            // one_hot[c][r], piece-major over the rows (8 rows per 16 bytes).
            *reinterpret_cast<uint16_t*>(one_hot + (r / 8) * (P::kFusedMaxK * 16) + col * 16 + (r % 8) * 2) = kOne;
            written += fa.inner_product ? -score : score;
        }
    }
#else
    __trap(); // the fused assignment runs on sm_90a only
#endif
    return written;
}

/// A block's walk over its slices' chunks, in order: slice task id (b, p)
/// and its chunk c.
struct ChunkCursor {
    int64_t id, tasks, stride;
    SliceRows slice;
    int c = 0;

    __device__ ChunkCursor(const SliceTask& task, int64_t tasks_)
            : id(blockIdx.x), tasks(tasks_), stride(gridDim.x), slice(task, int64_t(blockIdx.x) < tasks_ ? blockIdx.x : 0) {}
    __device__ bool valid() const {
        return id < tasks;
    }
    __device__ bool last_of_slice() const {
        return c + 1 == slice.chunks;
    }
    __device__ void next(const SliceTask& task) {
        if (++c == slice.chunks) {
            c = 0;
            id += stride;
            if (id < tasks) {
                slice = SliceRows(task, id);
            }
        }
    }
};

/** The sums warpgroup's product for one chunk: sums[128 clusters × N]
 * (two m64 accumulators, N = 32·kDimTiles coordinates) += one_hot[128 ×
 * 128 rows] · X[128 rows × N], eight k16 steps; X is the staged chunk read
 * N-major (its 8 coordinates per 16 bytes), the one-hot K-major. The
 * first chunk of a slice overwrites instead of adding.
 */
template <typename T, int kDimTiles>
__device__ __forceinline__ void sum_chunk(
        const SmemLayout& l,
        const unsigned char* points,
        const unsigned char* one_hot,
        bool first,
        float (&acc)[2][16 * kDimTiles]) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    wgmma_fence();
#pragma unroll
    for (int m = 0; m < 2; m++) {
#pragma unroll
        for (int ks = 0; ks < P::kFusedRows / 16; ks++) {
            // A: clusters 64m.. × rows 16ks..: 8-cluster groups 128 bytes
            // apart, the next 8 rows a whole piece-row (kFusedMaxK·16) on.
            const uint64_t da = piece_major_descriptor(one_hot + m * 64 * 16 + 2 * ks * (P::kFusedMaxK * 16),
                                                       P::kFusedMaxK * 16, 128);
            // B (N-major): rows 16ks..: 8 rows 128 bytes apart (leading),
            // 8 coordinates a piece (block_stride) apart (stride).
            const uint64_t db = piece_major_descriptor(points + ks * 16 * 16, 128, l.block_stride);
            wgmma_m64k16<T, 32 * kDimTiles, true>(acc[m], da, db, !first || ks > 0);
        }
    }
    wgmma_commit();
    wgmma_wait<0>();
#else
    __trap();
#endif
}

/** The assignment fused into the on-chip update, one block per SM of two
 * warpgroups over the block's chunks g = 0, 1, ... (its slices in turn):
 * - the assign warpgroup assigns each chunk (assign_chunk; a slice's
 *   first chunk reloads the problem's centroids), counts its clusters and
 *   writes its one-hot matrix into buffer g % 2; the objective share goes
 *   to fa.obj_partials[task];
 * - the sums warpgroup stages the chunks (two ahead, one cp.async group
 *   each), signals each one landed, adds each chunk with one product
 *   (sum_chunk) and writes the slice's partials after its last chunk.
 * Named barriers (each completed once before it is arrived at again):
 * kBarLanded + g % 2 (sums -> assign: chunk g landed), kBarOneHot + g % 2
 * (assign -> sums: its one-hot written), kBarSummed + g % 2 (sums ->
 * assign: one-hot buffer g % 2 free again), kBarAssigners (within the
 * assign warpgroup). Chunk g + 2 is staged into chunk g - 1's stage once
 * chunk g's one-hot is written (so chunk g - 1's assignment is done) and
 * chunk g - 1 is summed.
 */
template <typename T, int kDimTiles>
__global__ void __launch_bounds__(P::kFusedThreads, 1)
        assign_slice_sums_kernel(UpdateArgs args, OnChipAssign fa, Workspace ws, SliceTask task) {
    extern __shared__ __align__(16) unsigned char smem[];
    __shared__ double s_warp_objective[4 * P::kAssignGroups];
    const SmemLayout& l = task.smem;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    constexpr int kAssignWarps = 4 * P::kAssignGroups;
    const bool assigns = warp < kAssignWarps;
    constexpr int kGroup = 128 * P::kAssignGroups; // the assign threads
    constexpr int kOneHotBytes = P::kFusedMaxK * P::kFusedRows * 2;
    clear_block_smem(task, smem, assigns && warp == 0);
    // Generic stores (the pads) before the wgmma reads of shared memory.
    fence_async_shared();
    __syncthreads();
    const int64_t tasks = args.batch * int64_t(task.slices);
    if (assigns) {
        warpgroup_reg_dealloc<P::kFusedAssignRegs>();
        const int t = threadIdx.x;
        double objective = 0;
        int64_t g = 0;
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
            }
            if (g >= 2) {
                named_barrier_sync(P::kBarSummed + int(g % 2), P::kFusedThreads); // chunk g - 2 summed
            }
            for (int i = t; i < kOneHotBytes / 16; i += kGroup) {
                reinterpret_cast<uint4*>(one_hot)[i] = make_uint4(0, 0, 0, 0);
            }
            named_barrier_sync(P::kBarLanded + int(g % 2), P::kFusedThreads);
            named_barrier_sync(P::kBarAssigners, kGroup); // one-hot zeroed, centroids in
            objective += assign_chunk<T, kDimTiles>(fa, task, smem, int(g % P::kFusedStages), one_hot,
                                                    at.slice.rows(at.c), at.slice.row0(at.c));
            // The one-hot's generic stores before the sums' wgmma reads.
            fence_async_shared();
            named_barrier_arrive(P::kBarOneHot + int(g % 2), P::kFusedThreads);
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
        const int t = threadIdx.x - kGroup;
        const int64_t src_ld = args.ldx * int64_t(sizeof(T));
        const StagingWalk walk(task.d, src_ld, l.row_stride, l.block_stride, 128, t);
        ChunkCursor ahead(task, tasks);
        int64_t staged = 0; // chunks staged: chunk h goes to stage h % kFusedStages
        const auto stage_next = [&]() {
            if (ahead.valid()) {
                stage_chunk(args, l, walk, src_ld, smem, int(staged % P::kFusedStages), ahead.slice.row0(ahead.c),
                            ahead.slice.rows(ahead.c), false);
                ahead.next(task);
                staged++;
            }
            cp_async_commit(); // empty groups too: the waits count groups
        };
        // Chunk h's landing, signalled once its group completed.
        const auto signal_landed = [&](int64_t h) {
            fence_async_shared();
            named_barrier_arrive(P::kBarLanded + int(h % 2), P::kFusedThreads);
        };
        stage_next();
        stage_next();
        float acc[2][16 * kDimTiles];
        int64_t g = 0;
        cp_async_wait<1>();
        if (ahead.valid() || staged > 0) {
            signal_landed(0);
        }
        for (ChunkCursor at(task, tasks); at.valid(); at.next(task), g++) {
            if (g + 1 < staged) {
                cp_async_wait<0>(); // chunk g + 1
                signal_landed(g + 1);
            }
            named_barrier_sync(P::kBarOneHot + int(g % 2), P::kFusedThreads);
            stage_next(); // chunk g + 2, into chunk g - 1's stage
            sum_chunk<T, kDimTiles>(l, smem + l.points + int(g % P::kFusedStages) * l.stage_bytes,
                                    smem + l.one_hot + int(g % 2) * kOneHotBytes, at.c == 0, acc);
            named_barrier_arrive(P::kBarSummed + int(g % 2), P::kFusedThreads);
            if (at.last_of_slice()) {
                // acc[m][4j + 2h + e]: cluster 64m + 16·warp + lane/4 + 8h,
                // coordinate 8j + 2·(lane % 4) + e.
                const int64_t slot0 = at.id * task.k;
                const int w = warp - kAssignWarps;
#pragma unroll
                for (int m = 0; m < 2; m++) {
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int c = 64 * m + 16 * w + lane / 4 + 8 * h;
                        if (c >= task.k) {
                            continue;
                        }
                        float* row = ws.sums + (slot0 + c) * task.d;
#pragma unroll
                        for (int j = 0; j < 4 * kDimTiles; j++) {
                            const int dim = 8 * j + 2 * (lane % 4);
                            if (dim < task.d) {
                                *reinterpret_cast<float2*>(row + dim) =
                                        make_float2(acc[m][4 * j + 2 * h], acc[m][4 * j + 2 * h + 1]);
                            }
                        }
                    }
                }
            }
        }
    }
}


template <typename T>
void launch_assign_slice_sums(
        const UpdateArgs& args,
        const OnChipAssign& assign,
        const Workspace& ws,
        const Plan& plan,
        cudaStream_t stream) {
    const auto launch = [&](auto dim_tiles) {
        const auto kernel = assign_slice_sums_kernel<T, decltype(dim_tiles)::value>;
        reserve_smem(kernel, plan);
        kernel<<<plan.grid, P::kFusedThreads, size_t(plan.task.smem.total), stream>>>(args, assign, ws, plan.task);
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
    return onchip_fit(args).fits() && args.k <= P::kFusedMaxK &&
            TileCounts::of(args.k, args.d).dim_tiles <= P::kFusedMaxDimTiles;
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

// The on-chip update's shared pieces (onchip_update.cuh has the design):
// the tile policy, the shared-memory layouts, the workspace and the plan
// of a launch (slices per problem, grid), the cp.async staging of a
// chunk, a slice's rows, the block's one-time clearing, the counts'
// write-out, and the finish (cluster_means over the slices' partials,
// problem_stats). Included by the two kernel families' .cu files:
// onchip_update.cu (slice sums, points and labels staged) and
// onchip_assign_update.cu (the assignment fused in).

#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <faiss/impl/FaissAssert.h>

#include "onchip_update.cuh"
#include "update_common.cuh"
#include "../block/tile_copy.cuh"
#include "../util/launch_check.h"

namespace faiss_flash {
namespace kernels {
namespace onchip {


/// Tile shapes of slice_sums_kernel.
struct SliceSumsPolicy {
    static constexpr int kWarps = 8;
    static constexpr int kThreads = 32 * kWarps;
    /// Stages the chunks' labels, ranks each chunk by slab (one chunk
    /// ahead, while the others sum) and counts the clusters' rows; owns
    /// tiles only where the others cannot hold them all.
    static constexpr int kRankingWarp = kWarps - 1;
    /// Clusters of a slab: the m of mma.m16n8k16, rows of the one-hot operand.
    static constexpr int kSlabClusters = 16;
    /// Rows of a chunk one product adds: the mma's k.
    static constexpr int kGroupRows = 16;
    /// Dimensions of an accumulator tile: four n8 products, two
    /// ldmatrix.x4.trans per group of rows.
    static constexpr int kTileDims = 32;
    static constexpr int kTileNs = kTileDims / 8;
    /// 16 × 32 fp32 per tile is 16 registers a lane: four tiles and the
    /// next tile's fragments keep a block within 128 registers a thread,
    /// two blocks per SM (one stages while the other sums).
    static constexpr int kMaxTilesPerWarp = 4;
    static constexpr int kMaxTiles = kWarps * kMaxTilesPerWarp;
    static constexpr int kMaxSlabs = kMaxTiles;
    /// Staged rows per chunk: at most four per lane of the ranking warp;
    /// fewer for wide rows (kStageBudget).
    static constexpr int kMaxChunkRows = 128;
    static constexpr int kMinChunkRows = kGroupRows;
    /// Chunks in flight while one is summed: two.
    static constexpr int kStages = 3;
    /// Shared memory of a block's point stages at most: two blocks per SM.
    static constexpr int64_t kStageBudget = 106 * 1024;
    /// With the assignment fused in (assign_slice_sums_kernel), one block
    /// per SM: kAssignGroups warpgroups assign the chunks (wgmma, 64 rows
    /// each) and write each chunk's one-hot matrix; one warpgroup has the
    /// TMA stage the chunks and adds each to the sums as one wgmma product,
    /// X^T[d × 128 rows] · onehot[128 rows × (104 or 128) clusters], no
    /// ranking.
    /// kFusedStages chunks of kFusedRows points (the TMA's 128B-swizzled
    /// rows), two one-hot buffers, the problem's centroids.
    static constexpr int kAssignGroups = 2;
    static constexpr int kFusedThreads = 128 * (kAssignGroups + 1);
    /// Register split of the fused kernel: the sums warpgroup holds two
    /// 64 x 128 (or 64 x 104) accumulators for the whole slice.
    static constexpr int kFusedAssignRegs = 128;
    static constexpr int kFusedSumRegs = 232;
    // setmaxnreg.inc waits until the other warpgroups have freed enough:
    // the split must fit in the 168 registers a thread gets at launch.
    static_assert(128 * (kAssignGroups * kFusedAssignRegs + kFusedSumRegs) <= 168 * kFusedThreads,
                  "the fused kernel's register split exceeds its launch allocation");
    static constexpr int kFusedStages = 3;
    static constexpr int kFusedRows = 128;
    /// Named barriers of the fused kernel (0 is __syncthreads): the assign
    /// warpgroups; a chunk's one-hot written, its sums done, its
    /// assignment products done (two each, by chunk parity). A chunk's
    /// landing is an mbarrier per stage.
    static constexpr int kBarAssigners = 1;
    static constexpr int kBarOneHot = 2;
    static constexpr int kBarSummed = kBarOneHot + 2;
    static constexpr int kBarProducts = kBarSummed + 2;
    /// Coordinates of a 128B-swizzled row (a TMA box's width): the fused
    /// kernel's points and centroids are 64-coordinate halves of 128 bytes.
    static constexpr int kSwizzleDims = 64;

    /// Centroids the fused assignment holds: one wgmma N (zero rows and a
    /// +inf bias past k); and the widest points it takes (k16 steps
    /// unrolled per kernel instance).
    static constexpr int kFusedMaxK = 128;
    static constexpr int kFusedMaxDimTiles = 4;
    /// Bits of a row's slab in the ranking's ballots: slabs < kMaxSlabs
    /// and the marker of rows past the chunk's end, kMaxSlabs.
    static constexpr int kSlabBits = 6;
    /// Bytes past a staged row's kTileDims-padded coordinates: the eight
    /// rows of one ldmatrix then start in different bank groups.
    static constexpr int kRowSkewBytes = 16;
    /// Slices of fewer rows would spend more on their partials (k·d fp32
    /// each) than on their points.
    static constexpr int64_t kMinSliceRows = 512;
    /// A cluster adds at most this many rows in fp32 before the fp64 sum
    /// of the slices.
    static constexpr int64_t kMaxSliceRows = int64_t(1) << 15;
};
using P = SliceSumsPolicy;

inline int64_t align_up(int64_t v, int64_t to) {
    return (v + to - 1) / to * to;
}

/// The slab and dimension-tile counts of a shape: the block's accumulator
/// tiles are slabs × dim_tiles.
struct TileCounts {
    int64_t slabs, dim_tiles;

    static TileCounts of(int64_t k, int64_t d) {
        return TileCounts{(k + P::kSlabClusters - 1) / P::kSlabClusters, (d + P::kTileDims - 1) / P::kTileDims};
    }
    int64_t tiles() const {
        return slabs * dim_tiles;
    }
};

/// Byte offsets of the regions of the dynamic shared memory. The ranking
/// is double-buffered: the next chunk's is written while this one's is read.
/// The fused kernel's layout (fused_smem_layout) uses the stages, counts,
/// centroids, bias, one_hot and full regions only, past a 1024-byte aligned
/// base (the swizzle's period).
struct SmemLayout {
    int stages;      ///< chunk buffers
    int rows;        ///< staged per chunk
    int pitch;       ///< bytes of a staged row (row-major stages)
    /// A staged coordinate piece (16 bytes: 8 coordinates) of row r, piece
    /// j sits at r·row_stride + j·block_stride of its stage (row-major:
    /// pitch, 16). Fused: rows of 128 bytes (row_stride), 64-coordinate
    /// halves of the chunk block_stride = rows·128 apart, 128B-swizzled.
    int row_stride, block_stride;
    int stage_bytes;
    int centroid_block_stride; ///< fused: centroid_rows·128 (the centroids' halves)
    int labels;      ///< kStages × rows int32
    int ranked;      ///< 2 × ranked_bytes: a chunk's ranking (below)
    int ranked_bytes;
    int slab_base;   ///< kMaxChunkRows / 32 × kMaxSlabs int32: the ranking's scratch
    int counts;      ///< kMaxSlabs × kSlabClusters uint32: the slice's rows per cluster
    int points;      ///< stages × stage_bytes, 16-byte aligned (fused: 1024)
    int centroid_rows; ///< fused assignment: kFusedMaxK (else 0)
    int centroids;   ///< fused: the problem's centroids, 128B-swizzled halves
    int bias;        ///< centroid_rows fp32: their score bias, +inf past k
    int one_hot;     ///< fused: 2 × kFusedMaxK × kFusedRows 16-bit, piece-major over the rows
    int full;        ///< fused: stages mbarriers (a chunk landed)
    int total;

    // A ranking: sorted row indices (uint8, stable within a slab), their
    // cluster within the slab (uint8), each with kGroupRows of slack for
    // a group's reads past the end, then kMaxSlabs + 1 int32 slab starts.
    __host__ __device__ int sorted_rows(int buf) const {
        return ranked + buf * ranked_bytes;
    }
    __host__ __device__ int sorted_subs(int buf) const {
        return sorted_rows(buf) + rows + P::kGroupRows;
    }
    __host__ __device__ int slab_start(int buf) const {
        return sorted_rows(buf) + ranked_bytes - (P::kMaxSlabs + 1) * 4;
    }
};

/// The slice sums' layout for chunks of `rows` rows (kStages stages).
inline SmemLayout smem_layout(int64_t d, int rows) {
    SmemLayout l{};
    l.stages = P::kStages;
    l.rows = rows;
    const int pieces = int(TileCounts::of(1, d).dim_tiles * P::kTileDims / 8);
    l.pitch = pieces * 16 + P::kRowSkewBytes;
    l.row_stride = l.pitch;
    l.block_stride = 16;
    l.stage_bytes = rows * l.pitch;
    l.labels = 0;
    l.ranked = l.labels + l.stages * rows * 4;
    l.ranked_bytes = int(align_up(2 * (rows + P::kGroupRows), 4)) + (P::kMaxSlabs + 1) * 4;
    l.slab_base = l.ranked + 2 * l.ranked_bytes;
    l.counts = l.slab_base + P::kMaxChunkRows / 32 * P::kMaxSlabs * 4;
    l.points = int(align_up(l.counts + P::kMaxSlabs * P::kSlabClusters * 4, 16));
    l.total = l.points + l.stages * l.stage_bytes;
    return l;
}

/// The fused kernel's layout (kFusedStages chunks of kFusedRows rows, the
/// problem's kFusedMaxK centroids), offsets past the 1024-byte aligned
/// base; total includes the slack of that alignment.
inline SmemLayout fused_smem_layout(int64_t d) {
    SmemLayout l{};
    l.stages = P::kFusedStages;
    l.rows = P::kFusedRows;
    const int halves = int((d + P::kSwizzleDims - 1) / P::kSwizzleDims);
    l.row_stride = P::kSwizzleDims * 2;
    l.block_stride = l.rows * l.row_stride;
    l.stage_bytes = halves * l.block_stride;
    l.points = 0;
    l.centroid_rows = P::kFusedMaxK;
    l.centroid_block_stride = l.centroid_rows * l.row_stride;
    l.centroids = l.points + l.stages * l.stage_bytes;
    l.bias = l.centroids + halves * l.centroid_block_stride;
    l.counts = l.bias + l.centroid_rows * 4;
    l.one_hot = int(align_up(l.counts + P::kFusedMaxK * 4, 16));
    l.full = l.one_hot + 2 * P::kFusedMaxK * P::kFusedRows * 2;
    l.total = 1024 + l.full + l.stages * 8;
    return l;
}

/// The most chunk rows (kMaxChunkRows halving down to kMinChunkRows) whose
/// point stages fit kStageBudget; 0 if none.
inline int chunk_rows(int64_t d) {
    for (int rows = P::kMaxChunkRows; rows >= P::kMinChunkRows; rows /= 2) {
        const SmemLayout l = smem_layout(d, rows);
        if (int64_t(l.stages) * l.stage_bytes <= P::kStageBudget) {
            return rows;
        }
    }
    return 0;
}

/// Workspace carve-up, the same on host (sizes) and device (pointers): the
/// fp32 partials of each slice (b, p), cluster c at slot (b·P + p)·K + c,
/// and the finish's per-cluster results.
struct Workspace {
    float* sums;             // B·P·K × d
    float* weights;          // B·P·K: the slot's rows, as the finish adds weights
    uint32_t* counts;        // B·P·K
    int64_t* cluster_counts; // B·K
    double* cluster_shift;   // B·K
    size_t total;

    Workspace(void* base, int64_t batch, int64_t k, int64_t d, int64_t slices) {
        const int64_t slots = batch * slices * k, clusters = batch * k;
        size_t off = 0;
        auto take = [&](size_t bytes) {
            void* p = base ? static_cast<char*>(base) + off : nullptr;
            off += (bytes + 255) / 256 * 256;
            return p;
        };
        sums = static_cast<float*>(take(sizeof(float) * slots * d));
        weights = static_cast<float*>(take(sizeof(float) * slots));
        counts = static_cast<uint32_t*>(take(sizeof(uint32_t) * slots));
        cluster_counts = static_cast<int64_t*>(take(sizeof(int64_t) * clusters));
        cluster_shift = static_cast<double*>(take(sizeof(double) * clusters));
        total = off;
    }
};

/// What every block of a launch shares: the shape in 32-bit terms (k·d
/// fits a block's registers; N and B·P < 2^32) and the smem layout.
struct SliceTask {
    SmemLayout smem;
    int k, d, slabs, dim_tiles;
    uint32_t n, slices;
};

/// A thread's share of staging a chunk: pieces t, t + kThreads, ... of
/// the chunk's rows × (d / 8) 16-byte pieces, walked without a division or
/// a 64-bit multiply per piece.
struct StagingWalk {
    int pieces;       ///< 16-byte pieces of a row
    int first_row, first_piece;
    int step_rows, step_pieces;
    int64_t src_step; ///< bytes from one piece of the thread to its next (no row carry)
    int dst_step;

    /// For this thread, the block's kThreads staging together.
    __device__ StagingWalk(int d, int64_t src_ld, int row_stride, int block_stride) {
        pieces = d / 8;
        first_row = int(threadIdx.x) / pieces;
        first_piece = int(threadIdx.x) % pieces;
        step_rows = P::kThreads / pieces;
        step_pieces = P::kThreads % pieces;
        src_step = step_rows * src_ld + step_pieces * 16;
        dst_step = step_rows * row_stride + step_pieces * block_stride;
    }
};

/// Stages rows [row0, row0 + rows) into stage buf: their points (16-byte
/// pieces at the layout's pitch) and, by the ranking warp alone (so that
/// it can wait for them by itself), their labels. The caller commits.
__device__ __forceinline__ void stage_chunk(
        const UpdateArgs& args,
        const SmemLayout& l,
        const StagingWalk& walk,
        int64_t src_ld,
        unsigned char* smem,
        int buf,
        int64_t row0,
        int rows) {
    if (int(threadIdx.x) / 32 == P::kRankingWarp) {
        for (int r = threadIdx.x % 32; r < rows; r += 32) {
            cp_async<4>(smem + l.labels + (buf * l.rows + r) * 4, args.labels + row0 + r);
        }
    }
    const unsigned char* src = static_cast<const unsigned char*>(args.x) + (row0 + walk.first_row) * src_ld +
            walk.first_piece * 16;
    unsigned char* dst =
            smem + l.points + buf * l.stage_bytes + walk.first_row * l.row_stride + walk.first_piece * l.block_stride;
    int r = walk.first_row, c = walk.first_piece;
    if (walk.step_pieces == 0) {
        // Whole rows per step (d / 8 divides kThreads): the piece stays.
#pragma unroll 4
        for (; r < rows; r += walk.step_rows) {
            cp_async<16>(dst, src);
            src += walk.src_step;
            dst += walk.dst_step;
        }
        return;
    }
    while (r < rows) {
        cp_async<16>(dst, src);
        r += walk.step_rows;
        c += walk.step_pieces;
        src += walk.src_step;
        dst += walk.dst_step;
        if (c >= walk.pieces) {
            c -= walk.pieces;
            r++;
            src += src_ld - walk.pieces * 16;
            dst += l.row_stride - walk.pieces * l.block_stride;
        }
    }
}


/// Once per block, before its first slice: coordinates past d up to the
/// dimension tiles' end, in every stage's rows, are zeros the staging
/// never writes; the counts start at zero. The first slice's barrier
/// orders these stores.
__device__ __forceinline__ void clear_block_smem(const SliceTask& task, unsigned char* smem, bool ranks) {
    const SmemLayout& l = task.smem;
    // d is a multiple of 8: whole 16-byte pieces past it.
    const int first_pad = task.d / 8, pad_pieces = task.dim_tiles * P::kTileDims / 8 - first_pad;
    const int stage_rows = l.stages * l.rows;
    for (int i = threadIdx.x; i < stage_rows * pad_pieces; i += blockDim.x) {
        const int r = i / pad_pieces, piece = first_pad + i % pad_pieces;
        *reinterpret_cast<uint4*>(smem + l.points + r / l.rows * l.stage_bytes + r % l.rows * l.row_stride +
                                  piece * l.block_stride) = make_uint4(0, 0, 0, 0);
    }
    if (ranks) {
        uint32_t* counts = reinterpret_cast<uint32_t*>(smem + l.counts);
        for (int c = threadIdx.x % 32; c < task.k; c += 32) {
            counts[c] = 0;
        }
    }
}

/// The rows of slice task id (b, p): the p-th of P near-equal runs of
/// problem b's rows (n / P rows, one more for the first n % P), in chunks.
struct SliceRows {
    uint32_t b;
    int64_t first, end;
    int chunks, chunk_rows;

    __device__ SliceRows(const SliceTask& task, int64_t id) {
        const uint32_t slice_rows = task.n / task.slices, longer = task.n % task.slices;
        const uint32_t p = uint32_t(id % task.slices);
        b = uint32_t(id / task.slices);
        first = int64_t(b) * task.n + int64_t(p) * slice_rows + min(p, longer);
        end = first + slice_rows + (p < longer ? 1 : 0);
        chunk_rows = task.smem.rows;
        chunks = int((end - first + chunk_rows - 1) / chunk_rows);
    }
    __device__ int64_t row0(int c) const {
        return first + int64_t(c) * chunk_rows;
    }
    __device__ int rows(int c) const {
        return int(min(end - row0(c), int64_t(chunk_rows)));
    }
};

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

/// After a slice, by the ranking warp: the clusters' counts (and weights,
/// as counts) into the slice's slots, then zeroed for the next slice.
__device__ __forceinline__ void write_slice_counts(const Workspace& ws, const SliceTask& task, int64_t id, unsigned char* smem) {
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + task.smem.counts);
    const int64_t slot0 = id * task.k;
    for (int c = threadIdx.x % 32; c < task.k; c += 32) {
        ws.counts[slot0 + c] = counts[c];
        ws.weights[slot0 + c] = float(counts[c]);
        counts[c] = 0;
    }
}


/// cluster_means_kernel's view of every cluster: one partial row per slice
/// of its problem, in slice order.
struct SlicePartials {
    using Value = float;
    const float* sums;
    const float* weights;
    const uint32_t* counts;
    uint32_t k;
    int64_t d;
    int64_t slices;
    uint32_t clusters; // B·K < 2^32

    __device__ uint32_t size() const {
        return clusters;
    }
    __device__ uint32_t cluster(uint32_t i) const {
        return i;
    }
    __device__ PartialRows<float> rows(uint32_t q) const {
        // Slot of (problem q / K, slice 0), cluster q % K.
        const int64_t first = int64_t(q / k) * slices * k + q % k;
        return PartialRows<float>{sums + first * d, int64_t(k) * d, weights + first, counts + first, k, slices};
    }
};

/// A cluster's points, as the finish added them.
struct ClusterCounts {
    const int64_t* counts;

    __device__ int64_t operator()(int64_t q) const {
        return counts[q];
    }
};

/** Slices per problem: of the counts that keep each slice at least
 * max(kMinSliceRows, k) rows and the B·P tasks within about two waves of
 * `slots` resident blocks, the one that leaves the fewest turns of the
 * waves idle (the smallest such); at least enough that no slice has more
 * than kMaxSliceRows rows.
 */
inline int64_t slices_per_problem(int64_t batch, int64_t n, int64_t k, int64_t slots) {
    const int64_t most =
            std::max<int64_t>(1, std::min(n / std::max(P::kMinSliceRows, k), (2 * slots + batch - 1) / batch));
    int64_t best = 1, best_tasks = batch, best_waves = (batch + slots - 1) / slots;
    for (int64_t p = 2; p <= most; p++) {
        const int64_t tasks = batch * p, waves = (tasks + slots - 1) / slots;
        // tasks / (waves·slots) > best_tasks / (best_waves·slots)
        if (tasks * best_waves > best_tasks * waves) {
            best = p;
            best_tasks = tasks;
            best_waves = waves;
        }
    }
    return std::max(best, (n + P::kMaxSliceRows - 1) / P::kMaxSliceRows);
}

/// The launch's plan, a deterministic function of the shape and the
/// current GPU's SM count: workspace size and launch agree.
struct Plan {
    SliceTask task;
    unsigned grid;
};

inline Plan make_plan(const UpdateArgs& args, bool fused = false) {
    const TileCounts counts = TileCounts::of(args.k, args.d);
    // Resident blocks: two per SM; the fused kernel's one. Its slices are
    // planned on its own slots: each slice costs a k·d partial written
    // and read back by the finish, and a block takes its slices in turn.
    const int64_t slots = int64_t(device_limits().multiprocessors) * (fused ? 1 : 2);
    const int64_t slices = slices_per_problem(args.batch, args.n, args.k, slots);
    Plan plan;
    plan.task = SliceTask{fused ? fused_smem_layout(args.d) : smem_layout(args.d, chunk_rows(args.d)), int(args.k),
                          int(args.d),
                          int(counts.slabs),
                          int(counts.dim_tiles), uint32_t(args.n), uint32_t(slices)};
    plan.grid = unsigned(std::min(args.batch * slices, slots));
    return plan;
}

/// Reserves the plan's dynamic shared memory for kernel.
template <typename Kernel>
void reserve_smem(Kernel kernel, const Plan& plan) {
    const cudaError_t attr =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, plan.task.smem.total);
    FAISS_THROW_IF_NOT_FMT(attr == cudaSuccess, "on-chip update: cannot reserve %d bytes of shared memory: %s",
                           plan.task.smem.total, cudaGetErrorString(attr));
}


/// The slices' partials added in slice order, then the problems' statistics.
inline void finish(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    const int64_t clusters = args.batch * args.k;
    const SlicePartials partials{ws.sums, ws.weights, ws.counts, uint32_t(args.k), args.d, plan.task.slices,
                                 uint32_t(clusters)};
    launch_cluster_means(args, partials, clusters, ws.cluster_shift, ws.cluster_counts, stream);
    launch_problem_stats(args, ClusterCounts{ws.cluster_counts}, ws.cluster_shift, stream);
}


} // namespace onchip
} // namespace kernels
} // namespace faiss_flash

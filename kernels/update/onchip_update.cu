// On-chip update on tensor cores: the slice-sums kernel, the slice-sums
// kernel with the assignment fused in (sm_90a), the plan of their launch,
// and the finish through the shared cluster_means and problem_stats
// kernels (see .cuh).

#include "onchip_update.cuh"
#include "update_common.cuh"
#include "../block/tile_copy.cuh"
#include "../block/argmin.cuh"
#include "../block/named_barrier.cuh"
#include "../util/launch_check.h"
#include "../warp/mma_sm80.cuh"
#include "../warp/wgmma_sm90.cuh"
#include "../warp/warp_reduce.cuh"

#include <algorithm>
#include <cstdio>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

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
    /// each) and write each chunk's one-hot matrix; one warpgroup stages
    /// the chunks and adds each to the sums as one wgmma product,
    /// onehot[128 clusters × 128 rows] · X[128 rows × d], no ranking.
    /// kFusedStages chunks of kFusedRows points (piece-major), two one-hot
    /// buffers, the problem's centroids (the ranking's regions unused).
    static constexpr int kAssignGroups = 2;
    static constexpr int kFusedThreads = 128 * (kAssignGroups + 1);
    /// Register split of the fused kernel: the sums warpgroup holds two
    /// 64 x 128 accumulators for the whole slice.
    static constexpr int kFusedAssignRegs = 128;
    static constexpr int kFusedSumRegs = 232;
    static constexpr int kFusedStages = 3;
    static constexpr int kFusedRows = 128;
    /// Named barriers of the fused kernel (0 is __syncthreads): the assign
    /// warpgroups; a chunk landed, its one-hot written, its sums done (two
    /// each, by chunk parity).
    static constexpr int kBarAssigners = 1;
    static constexpr int kBarLanded = 2;
    static constexpr int kBarOneHot = kBarLanded + 2;
    static constexpr int kBarSummed = kBarOneHot + 2;

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

int64_t align_up(int64_t v, int64_t to) {
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
struct SmemLayout {
    int stages;      ///< chunk buffers
    int rows;        ///< staged per chunk
    int pitch;       ///< bytes of a staged row (row-major stages)
    /// A staged coordinate piece (16 bytes: 8 coordinates) of row r, piece
    /// j sits at r·row_stride + j·block_stride of its stage: row-major
    /// (pitch, 16), or, for the fused assignment's wgmma operands, piece-
    /// major (16, rows·16: 8-row core matrices of 128 contiguous bytes).
    int row_stride, block_stride;
    int stage_bytes;
    int centroid_block_stride; ///< fused: centroid_rows·16 (centroids piece-major)
    int labels;      ///< kStages × rows int32
    int ranked;      ///< 2 × ranked_bytes: a chunk's ranking (below)
    int ranked_bytes;
    int slab_base;   ///< kMaxChunkRows / 32 × kMaxSlabs int32: the ranking's scratch
    int counts;      ///< kMaxSlabs × kSlabClusters uint32: the slice's rows per cluster
    int points;      ///< stages × rows × pitch, 16-byte aligned
    int centroid_rows; ///< fused assignment: kFusedMaxK (else 0)
    int centroids;   ///< the problem's centroids, piece-major
    int bias;        ///< centroid_rows fp32: their score bias, +inf past k
    int one_hot;     ///< fused: 2 × kFusedMaxK × kFusedRows 16-bit, piece-major over the rows
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

/// The layout for chunks of `rows` rows; fused_k > 0: with the fused
/// assignment's centroids (kFusedStages stages), else kStages.
SmemLayout smem_layout(int64_t d, int rows, int64_t fused_k = 0) {
    SmemLayout l;
    l.stages = fused_k > 0 ? P::kFusedStages : P::kStages;
    l.rows = rows;
    const int pieces = int(TileCounts::of(1, d).dim_tiles * P::kTileDims / 8);
    l.pitch = pieces * 16 + P::kRowSkewBytes;
    l.row_stride = fused_k > 0 ? 16 : l.pitch;
    l.block_stride = fused_k > 0 ? rows * 16 : 16;
    l.stage_bytes = fused_k > 0 ? pieces * rows * 16 : rows * l.pitch;
    l.labels = 0;
    l.ranked = l.labels + l.stages * rows * 4;
    l.ranked_bytes = int(align_up(2 * (rows + P::kGroupRows), 4)) + (P::kMaxSlabs + 1) * 4;
    l.slab_base = l.ranked + 2 * l.ranked_bytes;
    l.counts = l.slab_base + P::kMaxChunkRows / 32 * P::kMaxSlabs * 4;
    l.points = int(align_up(l.counts + P::kMaxSlabs * P::kSlabClusters * 4, 16));
    l.centroid_rows = fused_k > 0 ? P::kFusedMaxK : 0;
    l.centroids = l.points + l.stages * l.stage_bytes;
    l.centroid_block_stride = l.centroid_rows * 16;
    l.bias = l.centroids + pieces * l.centroid_block_stride;
    l.one_hot = int(align_up(l.bias + l.centroid_rows * 4, 16));
    l.total = l.one_hot + (fused_k > 0 ? 2 * P::kFusedMaxK * P::kFusedRows * 2 : 0);
    return l;
}

/// The most chunk rows (kMaxChunkRows halving down to kMinChunkRows) whose
/// point stages fit kStageBudget; 0 if none.
int chunk_rows(int64_t d) {
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

    /// For thread `t` of `threads` staging together.
    __device__ StagingWalk(int d, int64_t src_ld, int row_stride, int block_stride, int threads = P::kThreads,
                           int t = int(threadIdx.x)) {
        pieces = d / 8;
        first_row = t / pieces;
        first_piece = t % pieces;
        step_rows = threads / pieces;
        step_pieces = threads % pieces;
        src_step = step_rows * src_ld + step_pieces * 16;
        dst_step = step_rows * row_stride + step_pieces * block_stride;
    }
};

/// Stages rows [row0, row0 + rows) into stage buf: their points (16-byte
/// pieces at the layout's pitch) and, unless the kernel assigns them
/// itself, by the ranking warp alone (so that it can wait for them by
/// itself), their labels. The caller commits.
__device__ __forceinline__ void stage_chunk(
        const UpdateArgs& args,
        const SmemLayout& l,
        const StagingWalk& walk,
        int64_t src_ld,
        unsigned char* smem,
        int buf,
        int64_t row0,
        int rows,
        bool with_labels = true) {
    if (with_labels && int(threadIdx.x) / 32 == P::kRankingWarp) {
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

/** Ranks the staged chunk in stage `stage` by slab into ranking `buf`,
 * stably, by one warp, and counts its rows per cluster (shared atomics on
 * integers: exact, in any order). Lane l holds rows l + 32·i. Per i,
 * kSlabBits ballots give each row the mask of its peers (the rows of its
 * slab among those 32), hence its rank among them; the peers' leader
 * records their count; lane s then adds slab s's counts over i into its
 * base per i, and a warp scan orders the slabs. Writes the sorted row
 * indices, their cluster within the slab, and each slab's first position
 * (slab_start[slabs] = rows).
 */
__device__ __forceinline__ void rank_chunk_by_slab(const SliceTask& task, unsigned char* smem, int stage, int buf, int rows) {
    constexpr int kPerLane = P::kMaxChunkRows / 32;
    const SmemLayout& l = task.smem;
    const int lane = threadIdx.x % 32;
    const int32_t* labels = reinterpret_cast<const int32_t*>(smem + l.labels) + stage * l.rows;
    uint8_t* sorted_rows = smem + l.sorted_rows(buf);
    uint8_t* sorted_subs = smem + l.sorted_subs(buf);
    int32_t* slab_start = reinterpret_cast<int32_t*>(smem + l.slab_start(buf));
    int32_t (*slab_base)[P::kMaxSlabs] = reinterpret_cast<int32_t (*)[P::kMaxSlabs]>(smem + l.slab_base);
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + l.counts);
    const uint32_t lower_lanes = (1u << lane) - 1;
    int slab[kPerLane], sub[kPerLane], rank[kPerLane];
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
        const int r = lane + 32 * i;
        const int label = r < rows ? labels[r] : 0;
        slab[i] = r < rows ? label / P::kSlabClusters : P::kMaxSlabs;
        sub[i] = label % P::kSlabClusters;
        if (r < rows) {
            atomicAdd(counts + label, 1u);
        }
        if (lane < task.slabs) {
            slab_base[i][lane] = 0;
        }
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
        uint32_t peers = 0xffffffffu;
#pragma unroll
        for (int bit = 0; bit < P::kSlabBits; bit++) {
            const bool set = (slab[i] >> bit) & 1;
            const uint32_t with_bit = __ballot_sync(0xffffffffu, set);
            peers &= set ? with_bit : ~with_bit;
        }
        rank[i] = __popc(peers & lower_lanes);
        if (rank[i] == 0 && slab[i] < P::kMaxSlabs) {
            slab_base[i][slab[i]] = __popc(peers);
        }
    }
    __syncwarp();
    // Lane s: slab s's rows before each i, then its first position.
    int total = 0, before[kPerLane];
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
        before[i] = total;
        total += lane < task.slabs ? slab_base[i][lane] : 0;
    }
    int start = total;
#pragma unroll
    for (int offset = 1; offset < 32; offset *= 2) {
        const int up = __shfl_up_sync(0xffffffffu, start, offset);
        start += lane >= offset ? up : 0;
    }
    start -= total;
    if (lane == 0) {
        slab_start[task.slabs] = rows;
    }
    if (lane < task.slabs) {
        slab_start[lane] = start;
#pragma unroll
        for (int i = 0; i < kPerLane; i++) {
            slab_base[i][lane] = start + before[i];
        }
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < kPerLane; i++) {
        if (slab[i] < P::kMaxSlabs) {
            const int pos = slab_base[i][slab[i]] + rank[i];
            sorted_rows[pos] = uint8_t(lane + 32 * i);
            sorted_subs[pos] = uint8_t(sub[i]);
        }
    }
    // The scratch is rewritten by the next ranking, the counts read at the
    // slice's end: both by this warp.
    __syncwarp();
}

/// Two 16-bit ones or zeros, packed as an mma operand register.
template <typename T>
__device__ __forceinline__ uint32_t one_hot_pair(bool lo, bool hi) {
    constexpr uint32_t kOne = std::is_same_v<T, __half> ? 0x3c00u : 0x3f80u;
    return (lo ? kOne : 0u) | (hi ? kOne << 16 : 0u);
}

/// The accumulators of one 16 × 32 tile: [n8 product][mma C registers].
using TileSums = float[P::kTileNs][4];

/// The accumulator tiles of a warp: tiles [first, first + count) of the
/// block's slabs × dim_tiles (slab-major), so that its tiles of one slab
/// share each group's one-hot operand: tile j is dimension tile
/// j - j0 of slab s, j0 = s·dim_tiles - first.
struct WarpTiles {
    int first, count, dim_tiles;
    int first_slab, last_slab;

    __device__ WarpTiles(int first_, int count_, int dim_tiles_)
            : first(first_), count(count_), dim_tiles(dim_tiles_) {
        first_slab = first / dim_tiles;
        last_slab = count > 0 ? (first + count - 1) / dim_tiles : first_slab - 1;
    }
};

/** Adds the staged chunk's rows to the warp's tiles, slab by slab: per
 * group of 16 sorted rows of the slab, the one-hot operand from their
 * clusters within the slab (zero past the slab's end), then for each of
 * the warp's tiles of that slab the rows' 32 coordinates by two
 * ldmatrix.x4.trans (the next tile's issued before this one's products)
 * and four products. Positions past the slab's end gather its first row
 * instead (staged, finite: times zero it adds nothing).
 *
 * mma.m16n8k16 operand A (16 clusters × 16 rows): lane holds rows (g, g+8)
 * × columns (2t, 2t+1, 2t+8, 2t+9), g = lane / 4, t = lane % 4.
 */
template <typename T>
__device__ __forceinline__ void add_chunk_rows(
        const SmemLayout& l,
        const unsigned char* smem,
        int stage,
        int buf,
        const WarpTiles& tiles,
        TileSums (&acc)[P::kMaxTilesPerWarp]) {
    using Recipe = RecipeHalf<T>;
    const int lane = threadIdx.x % 32;
    const uint8_t* sorted_rows = smem + l.sorted_rows(buf);
    const uint8_t* sorted_subs = smem + l.sorted_subs(buf);
    const int32_t* slab_start = reinterpret_cast<const int32_t*>(smem + l.slab_start(buf));
    // ldmatrix: lanes 8j..8j+7 address matrix j = (rows +8 if j odd) ×
    // (dims +8 if j >= 2); each lane one row of 8 coordinates.
    const unsigned char* points = smem + l.points + stage * l.stage_bytes + (lane / 16) * l.block_stride;
    const int gather_row = (lane / 8 % 2) * 8 + lane % 8;
    const int g = lane / 4, t2 = (lane % 4) * 2;
    for (int s = tiles.first_slab; s <= tiles.last_slab; s++) {
        const int begin = slab_start[s], end = slab_start[s + 1];
        const int j0 = s * tiles.dim_tiles - tiles.first;
        const int j_lo = max(0, j0), j_hi = min(tiles.count, j0 + tiles.dim_tiles);
        for (int p0 = begin; p0 < end; p0 += P::kGroupRows) {
            const auto sub_at = [&](int p) { return p < end ? int(sorted_subs[p]) : -1; };
            const int e0 = sub_at(p0 + t2), e1 = sub_at(p0 + t2 + 1), e8 = sub_at(p0 + t2 + 8),
                      e9 = sub_at(p0 + t2 + 9);
            typename Recipe::FragA a;
            a.r[0] = one_hot_pair<T>(e0 == g, e1 == g);
            a.r[1] = one_hot_pair<T>(e0 == g + 8, e1 == g + 8);
            a.r[2] = one_hot_pair<T>(e8 == g, e9 == g);
            a.r[3] = one_hot_pair<T>(e8 == g + 8, e9 == g + 8);
            const int p = p0 + gather_row < end ? p0 + gather_row : begin;
            const unsigned char* row = points + sorted_rows[p] * l.row_stride;
            uint32_t frag[2][2][4];
            const auto load = [&](int j, uint32_t (&f)[2][4]) {
                const unsigned char* tile_row = row + (j - j0) * (P::kTileDims / 8) * l.block_stride;
                ldmatrix_x4_trans(f[0], tile_row);
                ldmatrix_x4_trans(f[1], tile_row + 2 * l.block_stride);
            };
            if (j_lo == 0) {
                load(0, frag[0]);
            }
#pragma unroll
            for (int j = 0; j < P::kMaxTilesPerWarp; j++) {
                if (j + 1 < P::kMaxTilesPerWarp && j + 1 >= j_lo && j + 1 < j_hi) {
                    load(j + 1, frag[(j + 1) % 2]);
                }
                if (j >= j_lo && j < j_hi) {
#pragma unroll
                    for (int h = 0; h < P::kTileNs / 2; h++) {
                        const uint32_t(&f)[4] = frag[j % 2][h];
                        Recipe::mma(acc[j][2 * h], a, typename Recipe::FragB{{f[0], f[1]}});
                        Recipe::mma(acc[j][2 * h + 1], a, typename Recipe::FragB{{f[2], f[3]}});
                    }
                }
            }
        }
    }
}

/// A block's fixed share of a launch: its accumulator tiles, its staging
/// walk, its role.
struct SliceBlock {
    WarpTiles tiles;
    StagingWalk walk;
    int64_t src_ld; ///< bytes between the points' rows
    bool ranks;     ///< the ranking warp

    __device__ SliceBlock(const UpdateArgs& args, const SliceTask& task, int element_bytes)
            : tiles(tiles_of_warp(task)),
              walk(task.d, args.ldx * element_bytes, task.smem.row_stride, task.smem.block_stride),
              src_ld(args.ldx * element_bytes),
              ranks(threadIdx.x / 32 == P::kRankingWarp) {}

    /// Warp w's tiles: [w·per_warp, +per_warp) of slabs × dim_tiles.
    __device__ static WarpTiles tiles_of_warp(const SliceTask& task) {
        const int warp = threadIdx.x / 32;
        const int tile_count = task.slabs * task.dim_tiles;
        const int per_warp = (tile_count + P::kWarps - 1) / P::kWarps;
        return WarpTiles(warp * per_warp, max(0, min(per_warp, tile_count - warp * per_warp)), task.dim_tiles);
    }
};

/// Once per block, before its first slice: coordinates past d up to the
/// dimension tiles' end, in every stage's rows (and the fused assignment's
/// centroid rows), are zeros the staging never writes; the counts start
/// at zero. The first slice's barrier orders these stores.
__device__ __forceinline__ void clear_block_smem(const SliceTask& task, unsigned char* smem, bool ranks) {
    const SmemLayout& l = task.smem;
    // d is a multiple of 8: whole 16-byte pieces past it.
    const int first_pad = task.d / 8, pad_pieces = task.dim_tiles * P::kTileDims / 8 - first_pad;
    const int stage_rows = l.stages * l.rows;
    for (int i = threadIdx.x; i < (stage_rows + l.centroid_rows) * pad_pieces; i += blockDim.x) {
        const int r = i / pad_pieces, piece = first_pad + i % pad_pieces;
        unsigned char* dst = r < stage_rows
                ? smem + l.points + r / l.rows * l.stage_bytes + r % l.rows * l.row_stride + piece * l.block_stride
                : smem + l.centroids + (r - stage_rows) * 16 + piece * l.centroid_block_stride;
        *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
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

/** After a slice: the warp's tiles into the slice's slots (sums of
 * clusters < k, coordinates < d), and by the ranking warp the clusters'
 * counts (and weights, as counts), which it then zeroes for the next
 * slice.
 */
__device__ __forceinline__ void write_slice_partials(
        const Workspace& ws,
        const SliceTask& task,
        int64_t id,
        const WarpTiles& tiles,
        const TileSums (&acc)[P::kMaxTilesPerWarp],
        unsigned char* smem,
        bool ranks) {
    const int lane = threadIdx.x % 32;
    const int64_t slot0 = id * task.k;
    if (ranks) {
        write_slice_counts(ws, task, id, smem);
    }
    const int g = lane / 4, t2 = (lane % 4) * 2;
#pragma unroll
    for (int j = 0; j < P::kMaxTilesPerWarp; j++) {
        if (j >= tiles.count) {
            continue;
        }
        const int s = (tiles.first + j) / tiles.dim_tiles, dt = (tiles.first + j) % tiles.dim_tiles;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int c = s * P::kSlabClusters + g + 8 * half;
            if (c >= task.k) {
                continue;
            }
            float* row = ws.sums + (slot0 + c) * task.d;
#pragma unroll
            for (int nt = 0; nt < P::kTileNs; nt++) {
                // d is a multiple of 8: both coordinates are in, or neither.
                const int dim = dt * P::kTileDims + nt * 8 + t2;
                if (dim < task.d) {
                    *reinterpret_cast<float2*>(row + dim) = make_float2(acc[j][nt][2 * half], acc[j][nt][2 * half + 1]);
                }
            }
        }
    }
}

/** Per slice task (b, p), blocks grid-stride over the B·P tasks: the
 * slice's rows (the p-th of P near-equal runs of problem b's rows), chunk
 * by chunk, two chunks staged ahead of the one summed (kStages). One
 * barrier per chunk: the chunk has landed, its ranking is written, and
 * the previous chunk is summed (its stage may be refilled, the other
 * ranking buffer rewritten). The ranking warp ranks the next chunk after
 * its share of this one. Warp w owns the tiles [w·per_warp, +per_warp);
 * after the slice it writes their sums, and the ranking warp the
 * clusters' counts, into the task's slots. Every slot is written, empty
 * clusters' too, so the finish reads no stale value.
 */
template <typename T>
__global__ void __launch_bounds__(P::kThreads, 2) slice_sums_kernel(UpdateArgs args, Workspace ws, SliceTask task) {
    extern __shared__ __align__(16) unsigned char smem[];
    const SmemLayout& l = task.smem;
    const SliceBlock block(args, task, int(sizeof(T)));
    clear_block_smem(task, smem, block.ranks);
    const int64_t tasks = args.batch * int64_t(task.slices);
    for (int64_t id = blockIdx.x; id < tasks; id += gridDim.x) {
        const SliceRows slice(task, id);
        const auto stage = [&](int c) {
            if (c < slice.chunks) {
                stage_chunk(args, l, block.walk, block.src_ld, smem, c % P::kStages, slice.row0(c), slice.rows(c));
            }
            // Empty groups too: every wait below leaves the newest pending.
            cp_async_commit();
        };
        TileSums acc[P::kMaxTilesPerWarp] = {};
        // The previous task's chunks are summed: the stages may be refilled.
        __syncthreads();
        for (int c = 0; c < P::kStages - 1; c++) {
            stage(c);
        }
        if (block.ranks) {
            cp_async_wait<P::kStages - 2>();
            __syncwarp();
            rank_chunk_by_slab(task, smem, 0, 0, slice.rows(0));
        }
        for (int c = 0; c < slice.chunks; c++) {
            cp_async_wait<P::kStages - 2>();
            __syncthreads();
            stage(c + P::kStages - 1);
            add_chunk_rows<T>(l, smem, c % P::kStages, c % 2, block.tiles, acc);
            if (block.ranks && c + 1 < slice.chunks) {
                // Chunk c + 1's labels, this warp's own copies.
                cp_async_wait<P::kStages - 2>();
                __syncwarp();
                rank_chunk_by_slab(task, smem, (c + 1) % P::kStages, (c + 1) % 2, slice.rows(c + 1));
            }
        }
        write_slice_partials(ws, task, id, block.tiles, acc, smem, block.ranks);
    }
}

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
__device__ __forceinline__ uint64_t piece_major_descriptor(const void* smem_tile, int leading, int stride) {
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
int64_t slices_per_problem(int64_t batch, int64_t n, int64_t k, int64_t slots) {
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

Plan make_plan(const UpdateArgs& args, bool fused = false) {
    const TileCounts counts = TileCounts::of(args.k, args.d);
    const int64_t slots = int64_t(device_limits().multiprocessors) * 2;
    const int64_t slices = slices_per_problem(args.batch, args.n, args.k, slots);
    Plan plan;
    plan.task = SliceTask{smem_layout(args.d, fused ? P::kFusedRows : chunk_rows(args.d), fused ? args.k : 0), int(args.k),
                          int(args.d),
                          int(counts.slabs),
                          int(counts.dim_tiles), uint32_t(args.n), uint32_t(slices)};
    // The fused kernel runs one block per SM.
    plan.grid = unsigned(std::min(args.batch * slices, fused ? slots / 2 : slots));
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

template <typename T>
void launch_slice_sums(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    reserve_smem(slice_sums_kernel<T>, plan);
    slice_sums_kernel<T><<<plan.grid, P::kThreads, size_t(plan.task.smem.total), stream>>>(args, ws, plan.task);
    check_launch("slice_sums");
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

/// The slices' partials added in slice order, then the problems' statistics.
void finish(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    const int64_t clusters = args.batch * args.k;
    const SlicePartials partials{ws.sums, ws.weights, ws.counts, uint32_t(args.k), args.d, plan.task.slices,
                                 uint32_t(clusters)};
    launch_cluster_means(args, partials, clusters, ws.cluster_shift, ws.cluster_counts, stream);
    launch_problem_stats(args, ClusterCounts{ws.cluster_counts}, ws.cluster_shift, stream);
}

std::string describe(const char* format, long a, long b = 0, long c = 0) {
    char buf[256];
    std::snprintf(buf, sizeof(buf), format, a, b, c);
    return buf;
}

} // namespace

OnChipFit onchip_fit(const UpdateArgs& args) {
    if (args.x_type == PointType::F32) {
        return {"on-chip update: it sums 16-bit points exactly on tensor cores; fp32 points take the sort-inverse "
                "update"};
    }
    if (args.weights != nullptr) {
        return {"on-chip update: its one-hot products weigh every point 1; weighted points take the sort-inverse "
                "update"};
    }
    const TileCounts counts = TileCounts::of(args.k, args.d);
    if (counts.tiles() > P::kMaxTiles) {
        return {describe("on-chip update: the sums of k = %ld clusters of d = %ld dimensions need %ld accumulator "
                         "tiles of 16 x 32 in registers; a block holds 32",
                         long(args.k), long(args.d), long(counts.tiles()))};
    }
    const bool aligned = reinterpret_cast<uintptr_t>(args.x) % 16 == 0 && args.ldx * 2 % 16 == 0 &&
            args.d % 8 == 0 && chunk_rows(args.d) > 0;
    if (!aligned) {
        return {describe("on-chip update: it stages rows in 16-byte pieces; rows of d = %ld coordinates with a "
                         "stride of %ld are not all 16-byte aligned",
                         long(args.d), long(args.ldx))};
    }
    return {};
}

bool onchip_assign_fits(const UpdateArgs& args) {
    return onchip_fit(args).fits() && args.k <= P::kFusedMaxK &&
            TileCounts::of(args.k, args.d).dim_tiles <= P::kFusedMaxDimTiles;
}

size_t onchip_workspace_bytes(const UpdateArgs& args) {
    return Workspace(nullptr, args.batch, args.k, args.d, make_plan(args).task.slices).total;
}

void onchip_update(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const Plan plan = make_plan(args);
    const Workspace ws(workspace, args.batch, args.k, args.d, plan.task.slices);
    if (args.x_type == PointType::F16) {
        launch_slice_sums<__half>(args, ws, plan, stream);
    } else {
        launch_slice_sums<__nv_bfloat16>(args, ws, plan, stream);
    }
    finish(args, ws, plan, stream);
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

void onchip_finish(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const Plan plan = make_plan(args, true);
    finish(args, Workspace(workspace, args.batch, args.k, args.d, plan.task.slices), plan, stream);
}

} // namespace kernels
} // namespace faiss_flash

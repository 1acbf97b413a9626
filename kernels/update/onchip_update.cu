// On-chip update on tensor cores: the slice-sums kernel, the plan of its
// launch, and the finish through the shared cluster_means and
// problem_stats kernels (see .cuh).

#include "onchip_update.cuh"
#include "update_common.cuh"
#include "../block/tile_copy.cuh"
#include "../util/launch_check.h"
#include "../warp/mma_sm80.cuh"

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
    int rows;        ///< staged per chunk
    int pitch;       ///< bytes of a staged row
    int labels;      ///< kStages × rows int32
    int ranked;      ///< 2 × ranked_bytes: a chunk's ranking (below)
    int ranked_bytes;
    int slab_base;   ///< kMaxChunkRows / 32 × kMaxSlabs int32: the ranking's scratch
    int counts;      ///< kMaxSlabs × kSlabClusters uint32: the slice's rows per cluster
    int points;      ///< kStages × rows × pitch, 16-byte aligned
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

SmemLayout smem_layout(int64_t d, int rows) {
    SmemLayout l;
    l.rows = rows;
    l.pitch = int(TileCounts::of(1, d).dim_tiles * P::kTileDims * 2 + P::kRowSkewBytes);
    l.labels = 0;
    l.ranked = l.labels + P::kStages * rows * 4;
    l.ranked_bytes = int(align_up(2 * (rows + P::kGroupRows), 4)) + (P::kMaxSlabs + 1) * 4;
    l.slab_base = l.ranked + 2 * l.ranked_bytes;
    l.counts = l.slab_base + P::kMaxChunkRows / 32 * P::kMaxSlabs * 4;
    l.points = int(align_up(l.counts + P::kMaxSlabs * P::kSlabClusters * 4, 16));
    l.total = l.points + P::kStages * rows * l.pitch;
    return l;
}

/// The most chunk rows (kMaxChunkRows halving down to kMinChunkRows) whose
/// point stages fit kStageBudget; 0 if none.
int chunk_rows(int64_t d) {
    for (int rows = P::kMaxChunkRows; rows >= P::kMinChunkRows; rows /= 2) {
        if (int64_t(P::kStages) * rows * smem_layout(d, rows).pitch <= P::kStageBudget) {
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

    __device__ StagingWalk(int d, int64_t src_ld, int pitch) {
        pieces = d / 8;
        first_row = int(threadIdx.x) / pieces;
        first_piece = int(threadIdx.x) % pieces;
        step_rows = P::kThreads / pieces;
        step_pieces = P::kThreads % pieces;
        src_step = step_rows * src_ld + step_pieces * 16;
        dst_step = step_rows * pitch + step_pieces * 16;
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
    unsigned char* dst = smem + l.points + (buf * l.rows + walk.first_row) * l.pitch + walk.first_piece * 16;
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
            dst += l.pitch - walk.pieces * 16;
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
    const unsigned char* points = smem + l.points + stage * l.rows * l.pitch + (lane / 16) * 16;
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
            const unsigned char* row = points + sorted_rows[p] * l.pitch;
            uint32_t frag[2][2][4];
            const auto load = [&](int j, uint32_t (&f)[2][4]) {
                const unsigned char* tile_row = row + (j - j0) * P::kTileDims * 2;
                ldmatrix_x4_trans(f[0], tile_row);
                ldmatrix_x4_trans(f[1], tile_row + 32);
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
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const bool ranks = warp == P::kRankingWarp;
    const int tile_count = task.slabs * task.dim_tiles;
    const int per_warp = (tile_count + P::kWarps - 1) / P::kWarps;
    const WarpTiles tiles(warp * per_warp, max(0, min(per_warp, tile_count - warp * per_warp)), task.dim_tiles);
    const int chunk_rows = l.rows;
    const int64_t src_ld = args.ldx * int64_t(sizeof(T));
    const StagingWalk walk(task.d, src_ld, l.pitch);
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + l.counts);
    // Coordinates past d up to the dimension tiles' end are zeros the
    // staging never writes: set once. The counts start at zero.
    {
        const int pad_first = task.d * 2, pad_bytes = task.dim_tiles * P::kTileDims * 2 - pad_first;
        for (int i = threadIdx.x; i < P::kStages * chunk_rows * pad_bytes; i += P::kThreads) {
            smem[l.points + i / pad_bytes * l.pitch + pad_first + i % pad_bytes] = 0;
        }
        if (ranks) {
            for (int c = lane; c < task.k; c += 32) {
                counts[c] = 0;
            }
        }
    }
    // Slice p has n / P rows, one more for the first n % P slices.
    const uint32_t slice_rows = task.n / task.slices, longer = task.n % task.slices;
    const int64_t tasks = args.batch * int64_t(task.slices);
    for (int64_t id = blockIdx.x; id < tasks; id += gridDim.x) {
        const uint32_t b = uint32_t(id / task.slices), p = uint32_t(id % task.slices);
        const int64_t first = int64_t(b) * task.n + int64_t(p) * slice_rows + min(p, longer);
        const int64_t end = first + slice_rows + (p < longer ? 1 : 0);
        const int chunks = int((end - first + chunk_rows - 1) / chunk_rows);
        const auto rows_of = [&](int c) { return int(min(end - first - int64_t(c) * chunk_rows, int64_t(chunk_rows))); };
        const auto stage = [&](int c) {
            if (c < chunks) {
                stage_chunk(args, l, walk, src_ld, smem, c % P::kStages, first + int64_t(c) * chunk_rows, rows_of(c));
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
        if (ranks) {
            cp_async_wait<P::kStages - 2>();
            __syncwarp();
            rank_chunk_by_slab(task, smem, 0, 0, rows_of(0));
        }
        for (int c = 0; c < chunks; c++) {
            cp_async_wait<P::kStages - 2>();
            __syncthreads();
            stage(c + P::kStages - 1);
            add_chunk_rows<T>(l, smem, c % P::kStages, c % 2, tiles, acc);
            if (ranks && c + 1 < chunks) {
                // Chunk c + 1's labels, this warp's own copies.
                cp_async_wait<P::kStages - 2>();
                __syncwarp();
                rank_chunk_by_slab(task, smem, (c + 1) % P::kStages, (c + 1) % 2, rows_of(c + 1));
            }
        }
        const int64_t slot0 = id * task.k;
        if (ranks) {
            for (int c = lane; c < task.k; c += 32) {
                ws.counts[slot0 + c] = counts[c];
                ws.weights[slot0 + c] = float(counts[c]);
                counts[c] = 0;
            }
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

Plan make_plan(const UpdateArgs& args) {
    const TileCounts counts = TileCounts::of(args.k, args.d);
    const int64_t slots = int64_t(device_limits().multiprocessors) * 2;
    const int64_t slices = slices_per_problem(args.batch, args.n, args.k, slots);
    Plan plan;
    plan.task = SliceTask{smem_layout(args.d, chunk_rows(args.d)), int(args.k), int(args.d), int(counts.slabs),
                          int(counts.dim_tiles), uint32_t(args.n), uint32_t(slices)};
    plan.grid = unsigned(std::min(args.batch * slices, slots));
    return plan;
}

template <typename T>
void launch_slice_sums(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    const auto kernel = slice_sums_kernel<T>;
    const cudaError_t attr =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, plan.task.smem.total);
    FAISS_THROW_IF_NOT_FMT(attr == cudaSuccess, "on-chip update: cannot reserve %d bytes of shared memory: %s",
                           plan.task.smem.total, cudaGetErrorString(attr));
    kernel<<<plan.grid, P::kThreads, size_t(plan.task.smem.total), stream>>>(args, ws, plan.task);
    check_launch("slice_sums");
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
    const int64_t clusters = args.batch * args.k;
    const SlicePartials partials{ws.sums, ws.weights, ws.counts, uint32_t(args.k), args.d, plan.task.slices,
                                 uint32_t(clusters)};
    launch_cluster_means(args, partials, clusters, ws.cluster_shift, ws.cluster_counts, stream);
    launch_problem_stats(args, ClusterCounts{ws.cluster_counts}, ws.cluster_shift, stream);
}

} // namespace kernels
} // namespace faiss_flash

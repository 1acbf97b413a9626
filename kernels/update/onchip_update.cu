// On-chip update on tensor cores, the slice-sums kernel family: each
// chunk's labels staged, its rows ranked by slab, the slab's rows added as
// one-hot products on mma.sync; its launch, and the public entry points of
// the on-chip update (see .cuh; the shared pieces are in onchip_slices.cuh).

#include "onchip_slices.cuh"
#include "../warp/mma_sm80.cuh"

#include <cstdio>
#include <string>

namespace faiss_flash {
namespace kernels {

namespace {

using namespace onchip;

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


template <typename T>
void launch_slice_sums(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    reserve_smem(slice_sums_kernel<T>, plan);
    slice_sums_kernel<T><<<plan.grid, P::kThreads, size_t(plan.task.smem.total), stream>>>(args, ws, plan.task);
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
    // Either plan may run on it: the fused one where the shape takes it.
    const int64_t slices = std::max(make_plan(args).task.slices, make_plan(args, true).task.slices);
    return Workspace(nullptr, args.batch, args.k, args.d, slices).total;
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

void onchip_finish(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const Plan plan = make_plan(args, true);
    finish(args, Workspace(workspace, args.batch, args.k, args.d, plan.task.slices), plan, stream);
}

} // namespace kernels
} // namespace faiss_flash

// FlashAssign on Hopper (sm_90a), 16-bit operands: warp-specialised CTAs.
// One producer thread streams tiles with the TMA into a ring of 128B-
// swizzled shared-memory stages (mbarrier handshakes); two consumer
// warpgroups run wgmma on every centroid tile and fold the scores into their
// running argmin while the other warpgroup keeps the tensor cores busy.
//
// Two agents, by dimension:
// - ResidentPoints (d <= 256): the CTA's 256 points stay in shared memory
//   for the whole sweep, only centroid tiles stream: each centroid byte
//   fetched from L2 serves 256 points.
// - StreamingPoints (d > 256): point and centroid K-chunks stream together,
//   128 points x 256 centroids per tile.

#include "flash_assign_sm90.cuh"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>


#include <faiss/impl/FaissAssert.h>

#include "../block/argmin.cuh"
#include "../block/tma_sm90.cuh"
#include "../util/launch_check.h"
#include "../util/tensor_map.h"
#include "../warp/accumulator_fold.cuh"
#include "../warp/wgmma_sm90.cuh"
#include "../warp/warp_reduce.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

/// Floats of one centroid tile's staged score terms: its biases, then for
/// scaled operands its multipliers.
__host__ __device__ constexpr int tile_term_floats(int block_n, bool scaled) {
    return (scaled ? 2 : 1) * block_n;
}

/** StreamingPoints: 128 points (2 consumers x 64) x 256 centroids. Each
 * tile's score terms come with its last K chunk, into a slot of that
 * chunk's stage, which goes back to the producer after the fold.
 */
struct StreamingPolicy {
    static constexpr int kConsumers = 2;         // warpgroups of 64 points
    static constexpr int kBlockM = 64 * kConsumers;
    static constexpr int kBlockN = 256;          // one wgmma N
    static constexpr int kBlockK = 64;           // 128 bytes of 16-bit values: one swizzle row
    static constexpr int kStages = 4;
    static constexpr int kThreads = 128 * (1 + kConsumers);
    static constexpr int kTileABytes = kBlockM * kBlockK * 2;
    static constexpr int kTileBBytes = kBlockN * kBlockK * 2;
    static constexpr int kStageBytes = kTileABytes + kTileBBytes;
    static constexpr size_t smem_bytes(bool scaled) {
        return 1024 /* alignment slack */ + size_t(kStages) * (kStageBytes + tile_term_floats(kBlockN, scaled) * 4) +
                2 * kStages * sizeof(uint64_t) + 4 * kConsumers * sizeof(double);
    }
};

/// Register split of the 384 threads (65536 registers): the producer
/// warpgroup needs few, each consumer holds 128 accumulators.
[[maybe_unused]] constexpr int kProducerRegs = 40;
[[maybe_unused]] constexpr int kConsumerRegs = 232;

/// Centroid tile widths of the resident agent: the wide one, and a narrow
/// one for the k that it covers with fewer padded columns (k = 293: 3 x 104
/// = 312 columns instead of 384). Every column costs products and a fold
/// step whether or not a centroid is behind it.
constexpr int kWideTile = 128;
constexpr int kNarrowTile = 104;

/// Columns computed for k centroids in tiles of `width`.
constexpr int64_t tiled_columns(int64_t k, int width) {
    return (k + width - 1) / width * width;
}

/** ResidentPoints: 256 points (2 consumers x 2 slabs of 64) x kBlockN
 * centroids. A consumer folds its first slab while the second slab's
 * products run on the tensor cores.
 */
template <int kTileWidth = kWideTile>
struct ResidentPolicy {
    static constexpr int kConsumers = 2;
    static constexpr int kConsumerWarps = 4 * kConsumers;
    static constexpr int kBlockM = 256;
    static constexpr int kBlockN = kTileWidth;
    // A stage must start on a 1024-byte swizzle atom: 8-row multiples.
    static_assert(kBlockN % 8 == 0 && kBlockN <= 128, "a wgmma N of at most the wide tile");
    static constexpr int kBlockK = 64;
    static constexpr int kMaxDim = 256; // points of up to 4 K chunks stay resident
    static constexpr int kThreads = 128 * (1 + kConsumers);
    static constexpr int kPointChunkBytes = kBlockM * kBlockK * 2;
    static constexpr int kStageBytes = kBlockN * kBlockK * 2;
    static constexpr int kMaxStages = 8;
    static constexpr int kMaxBuffers = 3;
    static constexpr size_t kSmemBudget = 227 * 1024;

    __host__ __device__ static int k_chunks(int d_pad) {
        return (d_pad + kBlockK - 1) / kBlockK;
    }
    /// Per stage, the score terms of the tile whose first chunk it holds,
    /// bulk-copied with that chunk.
    __host__ __device__ static constexpr int term_floats(bool scaled) {
        return tile_term_floats(kBlockN, scaled);
    }
    static size_t fixed_bytes(int d_pad, int buffers, int stages) {
        return 1024 /* alignment slack */ + size_t(buffers) * k_chunks(d_pad) * kPointChunkBytes +
                (2 * stages + 2 * kMaxBuffers) * sizeof(uint64_t) + 2 * kConsumerWarps * sizeof(double);
    }
    static size_t smem_bytes(int d_pad, int buffers, int stages, bool scaled) {
        return fixed_bytes(d_pad, buffers, stages) + size_t(stages) * (kStageBytes + term_floats(scaled) * sizeof(float));
    }
    static int stages(int d_pad, int buffers, bool scaled) {
        const size_t stage_bytes = kStageBytes + term_floats(scaled) * sizeof(float);
        const size_t fixed = fixed_bytes(d_pad, buffers, kMaxStages);
        return fixed >= kSmemBudget ? 0 : int(std::min<size_t>(kMaxStages, (kSmemBudget - fixed) / stage_bytes));
    }
    /** Point blocks in shared memory. One centroid tile (k <= 128): the
     * tile stays in the ring while a CTA's blocks are of one problem, so a
     * block is little more than its point load, and as many buffers as fit
     * (up to 3) keep that many loads in flight: one load at a time leaves a
     * CTA waiting on HBM latency every block. A few tiles: two (the next
     * block loads while this one computes); else one and a deeper ring.
     */
    static int point_buffers(int d_pad, int64_t k, bool scaled) {
        const int64_t n_tiles = (k + kBlockN - 1) / kBlockN;
        if (n_tiles == 1 && k_chunks(d_pad) <= 2) {
            for (int buffers = kMaxBuffers; buffers > 2; buffers--) {
                if (stages(d_pad, buffers, scaled) >= k_chunks(d_pad)) {
                    return buffers;
                }
            }
        }
        return k_chunks(d_pad) <= 2 && n_tiles <= 16 ? 2 : 1;
    }
};

/// A place in the stage ring: the stage, and the parity of the fill of it
/// that the consumers wait for (flips each time the ring wraps).
struct RingPos {
    int stage = 0;
    uint32_t phase = 0;
};

/// Moves pos to the next stage of a ring of `stages`.
[[maybe_unused]] __device__ __forceinline__ void advance(RingPos& pos, int stages) {
    if (++pos.stage == stages) {
        pos.stage = 0;
        pos.phase ^= 1;
    }
}

/// Whether the resident agent runs two centroid tiles per iteration: the
/// ring then holds the chunks of both (8 stages for up to 3 chunks). Not
/// with multipliers: their loads push the pair past the register budget.
template <int kChunks, Score kScore>
constexpr bool kPairTiles = kChunks <= 3 && kScore != Score::Scaled;

/// Rows of problem b that are scored: n, or fewer with AssignArgs::rows_valid.
__device__ __forceinline__ int64_t scored_rows(const AssignArgs& args, int64_t b) {
    return args.rows_valid ? min(args.n, int64_t(args.rows_valid[b])) : args.n;
}

/** After the sweep: the 4 lanes of a quad share rows (a warpgroup owns all
 * columns of its rows, so this is the last reduction). Writes the labels
 * (and distances or margins, if wanted) of the rows of the 64-row slab
 * starting at CTA row slab_row0; returns the sum of the scores of the rows
 * this lane wrote (0 on the other lanes of a quad and for rows past
 * `rows`, see scored_rows): the block's share of the objective (see
 * AssignArgs::obj_partials).
 */
template <bool kMargin>
__device__ __forceinline__ double finish_rows(RowBest best, const AssignArgs& args, int64_t b, int64_t rows, int64_t cta_row0, int slab_row0) {
    const int lane = threadIdx.x % 32;
    double written = 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float sc = best.score[h];
        int32_t i = best.index[h];
        float second = best.second[h];
        if constexpr (kMargin) {
            quad_argmin_second(sc, i, second);
        } else {
            quad_argmin(sc, i);
        }
        const int64_t row = cta_row0 + slab_row0 + slab_row(h);
        if (lane % 4 == 0 && row < rows) {
            const int64_t out = b * args.n + row;
            args.labels[out] = i;
            if constexpr (kMargin) {
                args.margins[out] = second - sc;
            }
            if (args.distances) {
                // L2: ||x||² + (||c||² - 2<x,c>), negative round-off -> 0.
                args.distances[out] = args.inner_product ? -sc : fmaxf(args.x_norms[out] + sc, 0.0f);
            }
            written += args.inner_product ? -sc : sc;
        }
    }
    return written;
}

/// Deterministic block objective, first step: the warp's lane sums into
/// warp_obj[warp].
__device__ __forceinline__ void store_warp_objective(double lane_sum, double* warp_obj, int warp) {
    lane_sum = warp_sum(lane_sum);
    if (threadIdx.x % 32 == 0) {
        warp_obj[warp] = lane_sum;
    }
}

/// Second step, by one thread once every warp stored: the warps' sums in
/// warp order, as objective partial `partial`.
template <int kWarps>
__device__ __forceinline__ void write_objective_partial(const double* warp_obj, int64_t partial, const AssignArgs& args) {
    double total = 0;
#pragma unroll
    for (int w = 0; w < kWarps; w++) {
        total += warp_obj[w];
    }
    args.obj_partials[partial] = total;
}

/** The ring's handshakes: full[s] completes when the producer's TMA bytes
 * of stage s landed, empty[s] when every consumer is done reading it. Ends
 * with a CTA barrier, so every thread sees them initialised.
 */
[[maybe_unused]] __device__ __forceinline__ void init_ring_barriers(uint64_t* full, uint64_t* empty, int stages, int consumers) {
    if (threadIdx.x == 0) {
        for (int s = 0; s < stages; s++) {
            mbarrier_init(&full[s], 1);
            mbarrier_init(&empty[s], consumers);
        }
        fence_barrier_init();
    }
    __syncthreads();
}

template <typename Half, Score kScore, bool kMargin>
__global__ void __launch_bounds__(StreamingPolicy::kThreads, 1) flash_assign_streaming_kernel(
        const __grid_constant__ CUtensorMap map_x,
        const __grid_constant__ CUtensorMap map_c,
        AssignArgs args,
        int64_t m_tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using P = StreamingPolicy;
    extern __shared__ unsigned char smem_raw[];
    constexpr int kTermFloats = tile_term_floats(P::kBlockN, kScore == Score::Scaled);
    unsigned char* ring = align_to_swizzle_atom(smem_raw);
    float* terms = reinterpret_cast<float*>(ring + P::kStages * P::kStageBytes); // stages x [bias | multiplier]
    uint64_t* full = reinterpret_cast<uint64_t*>(terms + P::kStages * kTermFloats);
    uint64_t* empty = full + P::kStages;
    double* warp_obj = reinterpret_cast<double*>(empty + P::kStages); // per consumer warp

    const int warpgroup = threadIdx.x / 128, t = threadIdx.x % 128;
    const int64_t b = blockIdx.x / m_tiles;
    const int64_t row0 = (blockIdx.x % m_tiles) * P::kBlockM;
    const int64_t rows = scored_rows(args, b);
    if (row0 >= rows) {
        return; // compacted rows: none of this block's is scored
    }
    const int k_chunks = (args.d_pad + P::kBlockK - 1) / P::kBlockK;
    const int n_tiles = int((args.k + P::kBlockN - 1) / P::kBlockN);

    init_ring_barriers(full, empty, P::kStages, P::kConsumers);

    if (warpgroup == 0) {
        warpgroup_reg_dealloc<kProducerRegs>();
        // Producer: one thread issues every TMA load. Rows past this
        // problem's n (or k) belong to the next problem or are zero-filled
        // past the tensor; the consumers mask them.
        if (t == 0) {
            constexpr uint32_t kTermBytes = P::kBlockN * sizeof(float);
            RingPos pos;
            int64_t issued = 0;
            for (int tile = 0; tile < n_tiles; tile++) {
                for (int kc = 0; kc < k_chunks; kc++, issued++, advance(pos, P::kStages)) {
                    if (issued >= P::kStages) {
                        mbarrier_wait(&empty[pos.stage], pos.phase ^ 1);
                    }
                    const bool last = kc == k_chunks - 1;
                    mbarrier_arrive_expect_tx(&full[pos.stage],
                                              P::kStageBytes + (last ? kTermFloats * sizeof(float) : 0));
                    unsigned char* stage = ring + pos.stage * P::kStageBytes;
                    tma_load_2d(stage, &map_x, kc * P::kBlockK, int32_t(b * args.n + row0), &full[pos.stage]);
                    tma_load_2d(stage + P::kTileABytes, &map_c, kc * P::kBlockK,
                                int32_t(b * args.k + int64_t(tile) * P::kBlockN), &full[pos.stage]);
                    if (last) {
                        float* slot = terms + pos.stage * kTermFloats;
                        const int64_t col0 = b * args.k_pad + int64_t(tile) * P::kBlockN;
                        bulk_load(slot, args.c_bias_padded + col0, kTermBytes, &full[pos.stage]);
                        if constexpr (kScore == Score::Scaled) {
                            bulk_load(slot + P::kBlockN, args.c_multiplier_padded + col0, kTermBytes, &full[pos.stage]);
                        }
                    }
                }
            }
        }
    } else {
        warpgroup_reg_alloc<kConsumerRegs>();
        const int consumer = warpgroup - 1;
        float acc[128];
        RowBest best;
        RingPos pos;
        for (int tile = 0; tile < n_tiles; tile++) {
            // One K chunk stays in flight while the stage of the previous
            // one is handed back to the producer.
            RingPos previous;
            for (int kc = 0; kc < k_chunks; kc++) {
                mbarrier_wait(&full[pos.stage], pos.phase);
                unsigned char* stage = ring + pos.stage * P::kStageBytes;
                const uint64_t desc_a = wgmma_descriptor(stage + consumer * 64 * 128);
                const uint64_t desc_b = wgmma_descriptor(stage + P::kTileABytes);
                wgmma_fence();
#pragma unroll
                for (int kk = 0; kk < P::kBlockK / 16; kk++) {
                    wgmma_m64n256k16<Half>(acc, wgmma_descriptor_k(desc_a, kk), wgmma_descriptor_k(desc_b, kk),
                                           kc > 0 || kk > 0);
                }
                wgmma_commit();
                if (kc > 0) {
                    wgmma_wait<1>();
                    if (t == 0) {
                        mbarrier_arrive(&empty[previous.stage]);
                    }
                }
                previous = pos;
                advance(pos, P::kStages);
            }
            wgmma_wait<0>();
            // The last chunk's stage holds the tile's terms: it goes back
            // once the fold has read them.
            fold_tile<kScore, P::kBlockN / 8, kMargin>(acc, tile * P::kBlockN, terms + previous.stage * kTermFloats,
                                                       best);
            if (t == 0) {
                mbarrier_arrive(&empty[previous.stage]);
            }
        }
        store_warp_objective(finish_rows<kMargin>(best, args, b, rows, row0, consumer * 64), warp_obj,
                             threadIdx.x / 32 - 4);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        write_objective_partial<4 * P::kConsumers>(warp_obj, blockIdx.x, args);
    }
#endif
}


/** A CTA's walk over its point blocks of 256 rows: one (the grid covers
 * all blocks), or for persistent CTAs an even contiguous share, so that
 * consecutive blocks are mostly of one problem (and share its centroids).
 * 32-bit: B·N < 2^31 (checked at launch); no division per block.
 */
struct BlockCursor {
    int32_t block, end; ///< this block, one past the CTA's last
    int32_t b, row0;    ///< its problem, its first row there

    __device__ BlockCursor(int32_t blocks, int32_t m_tiles, bool persistent) {
        block = persistent ? int32_t(int64_t(blocks) * blockIdx.x / gridDim.x) : int32_t(blockIdx.x);
        end = persistent ? int32_t(int64_t(blocks) * (blockIdx.x + 1) / gridDim.x) : block + 1;
        b = block / m_tiles;
        row0 = (block % m_tiles) * ResidentPolicy<>::kBlockM;
    }
    __device__ bool valid() const {
        return block < end;
    }
    /// The next block is of the same problem (and exists).
    __device__ bool next_in_problem(int64_t n) const {
        return block + 1 < end && row0 + ResidentPolicy<>::kBlockM < n;
    }
    __device__ void next(int64_t n) {
        block++;
        row0 += ResidentPolicy<>::kBlockM;
        if (row0 >= n) {
            row0 = 0;
            b++;
        }
    }
};

/** ResidentPoints. Persistent CTAs run a range of point blocks (B·m_tiles
 * blocks of 256 rows in all) through `buffers` point buffers: the next
 * blocks' points load while this one computes, so no CTA waits on HBM
 * between blocks. With one centroid tile (k <= 128) the tile stays in the
 * ring while consecutive blocks are of one problem.
 *
 * kChunks: K chunks of the points (d_pad / 64, rounded up); a compile-time
 * count lets ptxas see which accumulators each wgmma group writes, so it
 * does not serialise the groups around the folds. !kPersistent: one block
 * per CTA (the grid covers all blocks): with many centroid tiles per block
 * the point load is a small share, and the single-block code schedules
 * the tile loop better.
 */
template <typename Half, Score kScore, int kChunks, bool kPersistent, bool kMargin, int kTileWidth = kWideTile>
__global__ void __launch_bounds__(ResidentPolicy<>::kThreads, 1) flash_assign_resident_kernel(
        const __grid_constant__ CUtensorMap map_x,
        const __grid_constant__ CUtensorMap map_c,
        AssignArgs args,
        int64_t m_tiles,
        int buffers,
        int stages) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using P = ResidentPolicy<kTileWidth>;
    constexpr int k_chunks = kChunks;
    constexpr int kBufferBytes = k_chunks * P::kPointChunkBytes;
    constexpr int kTermFloats = P::term_floats(kScore == Score::Scaled);
    extern __shared__ unsigned char smem_raw[];
    unsigned char* points = align_to_swizzle_atom(smem_raw);
    unsigned char* ring = points + buffers * kBufferBytes;
    float* terms = reinterpret_cast<float*>(ring + stages * P::kStageBytes); // stages x [bias | multiplier]
    uint64_t* points_full = reinterpret_cast<uint64_t*>(terms + stages * kTermFloats);
    uint64_t* points_empty = points_full + P::kMaxBuffers;
    uint64_t* full = points_empty + P::kMaxBuffers;
    uint64_t* empty = full + stages;
    double* warp_obj = reinterpret_cast<double*>(empty + stages); // 2 x consumer warps, by block parity

    const int warpgroup = threadIdx.x / 128, t = threadIdx.x % 128;
    const BlockCursor first(int32_t(args.batch * m_tiles), int32_t(m_tiles), kPersistent);
    const int n_tiles = int((args.k + P::kBlockN - 1) / P::kBlockN);
    if (!kPersistent && first.row0 >= scored_rows(args, first.b)) {
        return; // compacted rows: none of this block's is scored
    }

    if (threadIdx.x == 0) {
        for (int i = 0; i < buffers; i++) {
            mbarrier_init(&points_full[i], 1);
            mbarrier_init(&points_empty[i], P::kConsumers);
        }
    }
    init_ring_barriers(full, empty, stages, P::kConsumers);

    if (warpgroup == 0) {
        warpgroup_reg_dealloc<kProducerRegs>();
        // One thread issues every TMA load; each tile's score terms (padded
        // per problem: +inf bias past k) come with its first chunk, so the
        // consumers' folds read them from shared memory without bounds.
        if (t == 0) {
            RingPos buffer_pos;
            BlockCursor loading = first; // the next block whose points go out
            auto load_next_points = [&]() {
                if (loading.block - first.block >= buffers) {
                    mbarrier_wait(&points_empty[buffer_pos.stage], buffer_pos.phase ^ 1);
                }
                const int buf = buffer_pos.stage;
                mbarrier_arrive_expect_tx(&points_full[buf], kBufferBytes);
                for (int kc = 0; kc < k_chunks; kc++) {
                    tma_load_2d(points + buf * kBufferBytes + kc * P::kPointChunkBytes, &map_x, kc * P::kBlockK,
                                int32_t(loading.b * args.n + loading.row0), &points_full[buf]);
                }
                loading.next(args.n);
                advance(buffer_pos, buffers);
            };
            // Blocks loaded ahead of the one computing: all other buffers.
            const int64_t lead = std::max(1, buffers - 1);
            // The blocks ahead go out once the ring holds this block's first
            // tiles: by then the consumers have left the block whose buffer
            // the furthest one reuses.
            const int prefetch_tile = buffers >= 2 ? std::min(n_tiles, stages / k_chunks) - 1 : n_tiles - 1;
            constexpr uint32_t kTermBytes = P::kBlockN * sizeof(float);
            constexpr uint32_t kTileTermBytes = kTermFloats * sizeof(float);
            RingPos pos;
            int64_t issued = 0;
            while (loading.valid() && loading.block - first.block < lead) {
                load_next_points();
            }
            // A block finds its problem's only centroid tile in the ring
            // when the block before was of the same problem (the consumers
            // keep its stages then).
            bool kept = false;
            for (BlockCursor at = first; at.valid(); kept = n_tiles == 1 && at.next_in_problem(args.n), at.next(args.n)) {
                const int64_t b = at.b;
                for (int tile = 0; tile < n_tiles; tile++) {
                    for (int kc = 0; kc < k_chunks && !kept; kc++, issued++, advance(pos, stages)) {
                        if (issued >= stages) {
                            mbarrier_wait(&empty[pos.stage], pos.phase ^ 1);
                        }
                        mbarrier_arrive_expect_tx(&full[pos.stage], P::kStageBytes + (kc == 0 ? kTileTermBytes : 0));
                        tma_load_2d(ring + pos.stage * P::kStageBytes, &map_c, kc * P::kBlockK,
                                    int32_t(b * args.k + int64_t(tile) * P::kBlockN), &full[pos.stage]);
                        if (kc == 0) {
                            float* slot = terms + pos.stage * kTermFloats;
                            const int64_t col0 = b * args.k_pad + int64_t(tile) * P::kBlockN;
                            bulk_load(slot, args.c_bias_padded + col0, kTermBytes, &full[pos.stage]);
                            if constexpr (kScore == Score::Scaled) {
                                bulk_load(slot + P::kBlockN, args.c_multiplier_padded + col0, kTermBytes,
                                          &full[pos.stage]);
                            }
                        }
                    }
                    if (tile == prefetch_tile) {
                        while (loading.valid() && loading.block - at.block <= lead) {
                            load_next_points();
                        }
                    }
                }
            }
        }
    } else {
        warpgroup_reg_alloc<kConsumerRegs>();
        // Each consumer owns 128 points of a block as two 64-row slabs; one
        // slab's products run on the tensor cores while the other is folded.
        const int consumer = warpgroup - 1;
        const uint64_t desc_ring = wgmma_descriptor(ring);
        float acc[2][P::kBlockN / 2];
        RingPos issue_pos, release_pos, buffer_pos;
        int parity = 0; // of the block, for its warp objective slots
        for (BlockCursor at = first; at.valid(); at.next(args.n), parity ^= 1) {
            const int64_t b = at.b, row0 = at.row0;
            const int buf = buffer_pos.stage;
            // The next block reads this block's centroid tile: its stages
            // stay with the consumers.
            const bool keep_tile = n_tiles == 1 && at.next_in_problem(args.n);
            // Descriptors advance by (byte offset >> 4): computed once per
            // block, the hot loop only adds constants and stage offsets.
            const uint64_t desc_points = wgmma_descriptor(points + buf * kBufferBytes + consumer * 128 * 128);
            RowBest best[2];
            // Queues the products of one slab with the centroid tile whose
            // first chunk sits at `pos`, as one wgmma group. The waits come
            // first: a branch between the wgmmas of a group makes ptxas
            // serialise them. Only slab 0 waits: slab 1 of a tile is always
            // queued after it, and an mbarrier wait is a round trip on the
            // path from a fold to the next products even when the stage
            // has long landed.
            auto issue_slab = [&](float(&slab_acc)[P::kBlockN / 2], int slab, RingPos pos) {
                if (slab == 0) {
                    RingPos landed = pos;
#pragma unroll
                    for (int kc = 0; kc < k_chunks; kc++, advance(landed, stages)) {
                        mbarrier_wait(&full[landed.stage], landed.phase);
                    }
                }
                wgmma_fence();
#pragma unroll
                for (int kc = 0; kc < k_chunks; kc++, advance(pos, stages)) {
                    const uint64_t desc_a = desc_points + uint64_t((kc * P::kPointChunkBytes + slab * 64 * 128) >> 4);
                    const uint64_t desc_b = desc_ring + uint64_t(pos.stage * (P::kStageBytes >> 4));
#pragma unroll
                    for (int kk = 0; kk < P::kBlockK / 16; kk++) {
                        wgmma_m64k16<Half, P::kBlockN>(slab_acc, wgmma_descriptor_k(desc_a, kk),
                                                       wgmma_descriptor_k(desc_b, kk), kc > 0 || kk > 0);
                    }
                }
                wgmma_commit();
            };
            // Hands the k_chunks stages of the tile at pos back to the
            // producer; pos moves to the next tile.
            auto release_tile = [&](RingPos& pos) {
                for (int kc = 0; kc < k_chunks; kc++, advance(pos, stages)) {
                    if (t == 0) {
                        mbarrier_arrive(&empty[pos.stage]);
                    }
                }
            };
            auto fold = [&](float(&slab_acc)[P::kBlockN / 2], int tile, RingPos tile_pos, RowBest& slab_best) {
                fold_tile<kScore, P::kBlockN / 8, kMargin>(slab_acc, tile * P::kBlockN,
                                                           terms + tile_pos.stage * kTermFloats, slab_best);
            };
            mbarrier_wait(&points_full[buf], buffer_pos.phase);
            advance(buffer_pos, buffers);
            // Every group retires in the iteration that issued it: ptxas
            // cannot follow a group across the loop's back edge and would
            // serialise. Two tiles per iteration: three of the four folds
            // run while this warpgroup's own next products are on the
            // tensor cores.
            int tile = 0;
            if constexpr (kPairTiles<kChunks, kScore>) {
                for (; tile + 1 < n_tiles; tile += 2) {
                    const RingPos first = issue_pos;
                    for (int kc = 0; kc < k_chunks; kc++) {
                        advance(issue_pos, stages);
                    }
                    const RingPos second = issue_pos;
                    for (int kc = 0; kc < k_chunks; kc++) {
                        advance(issue_pos, stages);
                    }
                    // A tile's stages go back after its second fold: the
                    // folds read the terms staged with its first chunk.
                    issue_slab(acc[0], 0, first);
                    issue_slab(acc[1], 1, first);
                    wgmma_wait<1>();
                    fold(acc[0], tile, first, best[0]);
                    issue_slab(acc[0], 0, second);
                    wgmma_wait<1>();
                    fold(acc[1], tile, first, best[1]);
                    release_tile(release_pos);
                    issue_slab(acc[1], 1, second);
                    wgmma_wait<1>();
                    fold(acc[0], tile + 1, second, best[0]);
                    wgmma_wait<0>();
                    fold(acc[1], tile + 1, second, best[1]);
                    release_tile(release_pos);
                }
            }
            for (; tile < n_tiles; tile++) {
                const RingPos tile_pos = issue_pos;
                issue_slab(acc[0], 0, tile_pos);
                issue_slab(acc[1], 1, tile_pos);
                for (int kc = 0; kc < k_chunks && !keep_tile; kc++) {
                    advance(issue_pos, stages);
                }
                wgmma_wait<1>();
                fold(acc[0], tile, tile_pos, best[0]);
                wgmma_wait<0>();
                fold(acc[1], tile, tile_pos, best[1]);
                if (!keep_tile) {
                    release_tile(release_pos);
                }
            }
            // This warpgroup's last products of the block have retired.
            if (t == 0) {
                mbarrier_arrive(&points_empty[buf]);
            }
            double written = 0;
#pragma unroll
            for (int slab = 0; slab < 2; slab++) {
                // Persistent CTAs never take rows_valid (checked at launch).
                written += finish_rows<kMargin>(best[slab], args, b, kPersistent ? args.n : scored_rows(args, b),
                                                row0, consumer * 128 + slab * 64);
            }
            // One partial per warpgroup: a barrier of its own warps only, so
            // the two consumers never wait for each other at block ends and
            // one's folds can run beside the other's products. This
            // parity's sums are next written two blocks on, after the next
            // barrier.
            double* group_obj = warp_obj + (parity * P::kConsumers + consumer) * 4;
            store_warp_objective(written, group_obj, t / 32);
            named_barrier_sync(1 + consumer, 128);
            if (t == 0) {
                write_objective_partial<4>(group_obj, int64_t(at.block) * P::kConsumers + consumer, args);
            }
        }
    }
#endif
}

/// 2D map over `rows` rows of `ld` 16-bit elements (d_pad used), boxes of
/// 64 columns x box_rows rows, 128B swizzle, zero fill out of bounds.
CUtensorMap make_map(const void* base, CUtensorMapDataType type, int64_t rows, int64_t ld, int d_pad, int box_rows) {
    return make_swizzled_row_map(base, type, rows, ld, d_pad, box_rows, "FlashAssign sm90");
}

/// Multiprocessors of the current device: the persistent grid size.
int multiprocessors() {
    int device = 0, count = 0;
    FAISS_THROW_IF_NOT_MSG(cudaGetDevice(&device) == cudaSuccess &&
                                   cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) == cudaSuccess,
                           "FlashAssign sm90: cannot read the multiprocessor count");
    return count;
}

template <typename Kernel>
void reserve_smem(Kernel kernel, size_t bytes) {
    const cudaError_t attr = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
    FAISS_THROW_IF_NOT_FMT(attr == cudaSuccess, "FlashAssign sm90: cannot reserve %zd bytes of shared memory: %s",
                           bytes, cudaGetErrorString(attr));
}

/** The resident kernel for k_chunks K chunks, persistent or one block per
 * CTA. Narrow tiles are built for persistent CTAs only: the launch takes
 * them where the width policy leaves two point buffers or more.
 */
template <typename Half, Score kScore, bool kMargin, int kTileWidth>
auto resident_kernel(int k_chunks, bool persistent) {
    if (persistent) {
        return k_chunks == 1 ? flash_assign_resident_kernel<Half, kScore, 1, true, kMargin, kTileWidth>
                             : flash_assign_resident_kernel<Half, kScore, 2, true, kMargin, kTileWidth>;
    }
    FAISS_THROW_IF_NOT_MSG(kTileWidth == kWideTile, "FlashAssign sm90: narrow tiles need persistent CTAs");
    auto kernel = k_chunks == 1   ? flash_assign_resident_kernel<Half, kScore, 1, false, kMargin>
                  : k_chunks == 2 ? flash_assign_resident_kernel<Half, kScore, 2, false, kMargin>
                                  : flash_assign_resident_kernel<Half, kScore, 3, false, kMargin>;
    if constexpr (kScore != Score::Scaled) {
        if (k_chunks == 4) {
            kernel = flash_assign_resident_kernel<Half, kScore, 4, false, kMargin>;
        }
    }
    return kernel;
}

template <typename Half, Score kScore, bool kMargin, int kTileWidth>
int64_t launch_resident(const AssignArgs& args, CUtensorMapDataType type, cudaStream_t stream) {
    using P = ResidentPolicy<kTileWidth>;
    static_assert(P::kMaxDim == 4 * P::kBlockK, "one kernel per K chunk count");
    const int k_chunks = P::k_chunks(args.d_pad);
    constexpr bool kScaled = kScore == Score::Scaled;
    // Several point buffers only pay with persistent CTAs (point_buffers).
    const int buffers = P::point_buffers(args.d_pad, args.k, kScaled);
    // Persistent CTAs walk every block: they cannot skip compacted ones.
    FAISS_THROW_IF_NOT_MSG(buffers < 2 || !args.rows_valid,
                           "FlashAssign sm90: rows_valid needs one point block per CTA");
    const auto kernel = resident_kernel<Half, kScore, kMargin, kTileWidth>(k_chunks, buffers >= 2);
    const int stages = P::stages(args.d_pad, buffers, kScaled);
    const int64_t n_tiles = (args.k + P::kBlockN - 1) / P::kBlockN;
    // The last tile's terms are staged from the padded copy: +inf to its end.
    FAISS_THROW_IF_NOT_MSG(tiled_columns(args.k, P::kBlockN) <= args.k_pad,
                           "FlashAssign sm90: the padded terms end inside the last centroid tile");
    const int tiles_in_flight = n_tiles >= 2 && k_chunks <= 3 && !kScaled ? 2 : 1;
    static_assert(kPairTiles<3, Score::L2> && !kPairTiles<4, Score::L2> && !kPairTiles<1, Score::Scaled>,
                  "tiles_in_flight follows kPairTiles");
    FAISS_THROW_IF_NOT_FMT(stages >= tiles_in_flight * k_chunks,
                           "FlashAssign sm90: %d ring stages cannot hold %d tiles at d_pad %d", stages,
                           tiles_in_flight, args.d_pad);
    const size_t smem = P::smem_bytes(args.d_pad, buffers, stages, kScaled);
    reserve_smem(kernel, smem);
    const CUtensorMap map_x = make_map(args.x, type, args.batch * args.n, args.ldx, args.d_pad, P::kBlockM);
    const CUtensorMap map_c = make_map(args.c, type, args.batch * args.k, args.ldc, args.d_pad, P::kBlockN);
    const int64_t m_tiles = (args.n + P::kBlockM - 1) / P::kBlockM;
    const int64_t ctas = buffers >= 2 ? std::min<int64_t>(args.batch * m_tiles, multiprocessors())
                                      : args.batch * m_tiles;
    kernel<<<dim3(unsigned(ctas)), P::kThreads, smem, stream>>>(map_x, map_c, args, m_tiles, buffers, stages);
    check_launch("FlashAssign sm90");
    return m_tiles * P::kConsumers;
}

template <typename Half, Score kScore, bool kMargin = false>
int64_t launch(const AssignArgs& args, cudaStream_t stream) {
    const CUtensorMapDataType type =
            std::is_same_v<Half, __half> ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    // Multipliers take registers: scaled operands keep points resident for
    // up to 3 K chunks only (4 would spill).
    constexpr int kResidentChunks = kScore == Score::Scaled ? 3 : 4;
    if (args.d_pad <= kResidentChunks * ResidentPolicy<>::kBlockK) {
        // Narrow tiles where they compute fewer columns; built without
        // margins or multipliers (the certified fast pass and F16x3 keep
        // the wide tile).
        if constexpr (kScore != Score::Scaled && !kMargin) {
            if (tiled_columns(args.k, kNarrowTile) < tiled_columns(args.k, kWideTile) &&
                ResidentPolicy<kNarrowTile>::point_buffers(args.d_pad, args.k, false) >= 2) {
                return launch_resident<Half, kScore, kMargin, kNarrowTile>(args, type, stream);
            }
        }
        return launch_resident<Half, kScore, kMargin, kWideTile>(args, type, stream);
    } else {
        using P = StreamingPolicy;
        auto kernel = flash_assign_streaming_kernel<Half, kScore, kMargin>;
        const size_t smem = P::smem_bytes(kScore == Score::Scaled);
        reserve_smem(kernel, smem);
        const CUtensorMap map_x = make_map(args.x, type, args.batch * args.n, args.ldx, args.d_pad, P::kBlockM);
        const CUtensorMap map_c = make_map(args.c, type, args.batch * args.k, args.ldc, args.d_pad, P::kBlockN);
        const int64_t m_tiles = (args.n + P::kBlockM - 1) / P::kBlockM;
        kernel<<<dim3(unsigned(args.batch * m_tiles)), P::kThreads, smem, stream>>>(map_x, map_c, args, m_tiles);
        check_launch("FlashAssign sm90");
        return m_tiles;
    }
}

template <typename Half, bool kMargin = false>
int64_t launch_metric(const AssignArgs& args, cudaStream_t stream) {
    return args.inner_product ? launch<Half, Score::InnerProduct, kMargin>(args, stream)
                              : launch<Half, Score::L2, kMargin>(args, stream);
}

/** Whether the current device runs this build's sm_90a kernels (a Hopper
 * GPU, and the sm_90a code loaded for it: the kernels have a body only
 * there). Cached per device: every iteration's launch asks, and a device
 * property query costs more than a small problem's whole kernel.
 */
bool device_runs_sm90a() {
    static std::mutex mutex;
    static std::map<int, bool> known;
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        return false;
    }
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = known.find(device);
    if (it != known.end()) {
        return it->second;
    }
    int major = 0;
    cudaFuncAttributes attr;
    bool runs = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major == 9;
    if (runs && cudaFuncGetAttributes(&attr, flash_assign_resident_kernel<__half, Score::L2, 2, false, false>) != cudaSuccess) {
        cudaGetLastError();
        runs = false;
    }
    runs = runs && attr.binaryVersion == 90;
    known[device] = runs;
    return runs;
}

} // namespace

bool sm90_assign_supported(const AssignArgs& args, Operand op) {
    if (op != Operand::F16 && op != Operand::BF16 && op != Operand::F16x3) {
        return false;
    }
    // TMA coordinates are 32-bit; tiny d or k leave most of a wgmma idle.
    if (args.batch * args.n >= (int64_t(1) << 31) || args.batch * args.k >= (int64_t(1) << 31) ||
        args.d_pad < 64 || args.k < 32) {
        return false;
    }
    return device_runs_sm90a();
}

int64_t flash_assign_sm90(const AssignArgs& args, Operand op, cudaStream_t stream) {
    static_assert(kTermsTile % ResidentPolicy<>::kBlockN == 0 && kTermsTile % StreamingPolicy::kBlockN == 0,
                  "the padded terms come in whole wide tiles of both agents");
    FAISS_THROW_IF_NOT_MSG(args.c_bias_padded && args.k_pad == padded_terms(args.k),
                           "FlashAssign sm90: needs the score terms padded to k_pad = padded_terms(k)");
    FAISS_THROW_IF_NOT_MSG(!args.margins || op == Operand::F16, "FlashAssign sm90: margins need fp16 operands");
    switch (op) {
        case Operand::F16:
            return args.margins ? launch_metric<__half, true>(args, stream) : launch_metric<__half>(args, stream);
        case Operand::BF16:
            return launch_metric<__nv_bfloat16>(args, stream);
        case Operand::F16x3:
            FAISS_THROW_IF_NOT_MSG(args.c_multiplier && args.c_multiplier_padded,
                                   "FlashAssign sm90: F16x3 operands need c_multiplier and its padded copy");
            return launch<__half, Score::Scaled>(args, stream);
        default:
            FAISS_THROW_MSG("FlashAssign sm90: 16-bit operands only");
    }
}

} // namespace kernels
} // namespace faiss_flash

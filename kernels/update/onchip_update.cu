// On-chip update kernel and its launch helper (see .cuh).

#include "onchip_update.cuh"
#include "update_common.cuh"
#include "../block/tile_copy.cuh"
#include "../util/launch_check.h"
#include "../util/point_load.cuh"

#include <algorithm>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

constexpr int kThreads = 32 * kWarpsPerBlock;
/// Points of one cluster whose fp32 sum a slice keeps before moving it into
/// its fp64 partial: the sort-inverse update's chunk, so that both sum at
/// most this many points in fp32.
constexpr uint32_t kFlushRows = 256;
/// Rows staged per chunk: at most one label per thread, at least one
/// warp's ballot.
constexpr int kMaxChunkRows = kThreads;
constexpr int kMinChunkRows = 32;
/// Fewest rows of a slice (and no fewer than k): its fixed costs (zeroing
/// the sums, writing its partials, the finish reading them) stay below
/// those of its points.
constexpr int64_t kMinSliceRows = 256;
/// Resident blocks per SM the slicing plans for at most: one block's next
/// chunk is in flight while another's is summed, and the slices stay few,
/// since the finish walks a cluster's slices in order.
constexpr int64_t kMaxBlocksPerSm = 2;
/// Alignment of the shared-memory regions and of each staged row:
/// cp.async's widest piece, and float4 accesses to the sums.
constexpr int64_t kSmemAlign = 16;

static_assert(kMaxChunkRows <= kThreads, "a thread stages one label and one weight of a chunk");
static_assert(kMaxChunkRows % kMinChunkRows == 0 && kMinChunkRows % 32 == 0, "chunks of whole ballots");

int64_t align_up(int64_t bytes, int64_t to) {
    return (bytes + to - 1) / to * to;
}

/// Byte offsets of the regions of the dynamic shared memory.
struct SmemLayout {
    int64_t rows;        // staged per chunk
    int64_t row_bytes;   // of a staged row: d coordinates, padded to kSmemAlign
    int64_t sums;        // k × d fp32: the slice's weighted sums since the last flush
    int64_t weight_sums; // k fp32: likewise, the weights
    int64_t counts;      // k uint32: the slice's points of each cluster so far
    int64_t labels;      // 2 × rows int32: two chunk buffers
    int64_t weights;     // 2 × rows fp32
    int64_t points;      // 2 × rows × row_bytes
    int64_t total;
};

SmemLayout smem_layout(int64_t k, int64_t d, int64_t element_bytes, int64_t rows) {
    SmemLayout l;
    l.rows = rows;
    l.row_bytes = align_up(d * element_bytes, kSmemAlign);
    l.sums = 0;
    l.weight_sums = align_up(k * d * int64_t(sizeof(float)), kSmemAlign);
    l.counts = l.weight_sums + align_up(k * int64_t(sizeof(float)), kSmemAlign);
    l.labels = l.counts + align_up(k * int64_t(sizeof(uint32_t)), kSmemAlign);
    l.weights = l.labels + align_up(2 * rows * int64_t(sizeof(int32_t)), kSmemAlign);
    l.points = l.weights + align_up(2 * rows * int64_t(sizeof(float)), kSmemAlign);
    l.total = l.points + 2 * rows * l.row_bytes;
    return l;
}

/// Workspace carve-up, the same on host (sizes) and device (pointers):
/// the partials of each slice (b, p), cluster c at slot (b·P + p)·K + c,
/// and the finish's per-cluster results.
struct Workspace {
    double* sums;            // B·P·K × d
    double* weights;         // B·P·K
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
        sums = static_cast<double*>(take(sizeof(double) * slots * d));
        weights = static_cast<double*>(take(sizeof(double) * slots));
        counts = static_cast<uint32_t*>(take(sizeof(uint32_t) * slots));
        cluster_counts = static_cast<int64_t*>(take(sizeof(int64_t) * clusters));
        cluster_shift = static_cast<double*>(take(sizeof(double) * clusters));
        total = off;
    }
};

/// A piece of a staged row: cp.async where it can take it (4 bytes and
/// up), else a plain copy (a 16-bit coordinate).
template <int kBytes>
__device__ __forceinline__ void copy_piece(unsigned char* dst, const unsigned char* src) {
    if constexpr (kBytes >= 4) {
        cp_async<kBytes>(dst, src);
    } else {
        static_assert(kBytes == 2, "pieces of 2, 4, 8 or 16 bytes");
        *reinterpret_cast<uint16_t*>(dst) = *reinterpret_cast<const uint16_t*>(src);
    }
}

/// rows × row_bytes from src (row stride src_ld bytes) to dst (dst_ld), in
/// pieces of kBytes spread over the block in order. A thread's (row,
/// piece) advances by kThreads pieces without a division per piece.
template <int kBytes>
__device__ __forceinline__ void stage_rows(
        unsigned char* dst,
        int64_t dst_ld,
        const unsigned char* src,
        int64_t src_ld,
        int rows,
        int row_bytes) {
    const int pieces = row_bytes / kBytes;
    const int step_rows = kThreads / pieces, step_pieces = kThreads % pieces;
    int r = int(threadIdx.x) / pieces, c = int(threadIdx.x) % pieces;
    while (r < rows) {
        copy_piece<kBytes>(dst + r * dst_ld + c * kBytes, src + r * src_ld + c * kBytes);
        r += step_rows;
        c += step_pieces;
        if (c >= pieces) {
            c -= pieces;
            r++;
        }
    }
}

/// Stages rows [row0, row0 + rows) (global row indices) into chunk buffer
/// buf: their labels, weights and points, as one cp.async group.
/// copy_bytes: the widest piece the points' alignment allows (the launch
/// helper's choice); 2 only for 16-bit points.
template <typename T>
__device__ __forceinline__ void stage_chunk(
        const UpdateArgs& args,
        const SmemLayout& layout,
        unsigned char* smem,
        int buf,
        int64_t row0,
        int rows,
        int copy_bytes) {
    const int64_t entry = buf * layout.rows + threadIdx.x;
    if (int(threadIdx.x) < rows) {
        cp_async<4>(smem + layout.labels + entry * int64_t(sizeof(int32_t)), args.labels + row0 + threadIdx.x);
        if (args.weights) {
            cp_async<4>(smem + layout.weights + entry * int64_t(sizeof(float)), args.weights + row0 + threadIdx.x);
        }
    }
    unsigned char* dst = smem + layout.points + buf * layout.rows * layout.row_bytes;
    const int64_t src_ld = args.ldx * int64_t(sizeof(T));
    const unsigned char* src = static_cast<const unsigned char*>(args.x) + row0 * src_ld;
    const int row_bytes = int(args.d * int64_t(sizeof(T)));
    switch (copy_bytes) {
        case 16:
            stage_rows<16>(dst, layout.row_bytes, src, src_ld, rows, row_bytes);
            break;
        case 8:
            stage_rows<8>(dst, layout.row_bytes, src, src_ld, rows, row_bytes);
            break;
        case 4:
            stage_rows<4>(dst, layout.row_bytes, src, src_ld, rows, row_bytes);
            break;
        default:
            if constexpr (sizeof(T) == 2) {
                stage_rows<2>(dst, layout.row_bytes, src, src_ld, rows, row_bytes);
            }
    }
    cp_async_commit();
}

/// Adds the staged chunk (buffer buf, `rows` rows) to the slice's sums.
/// Warp w takes the rows whose cluster q ≡ w (mod kWarpsPerBlock), in row
/// order (a ballot per 32 rows, then its set bits in order): lane l adds
/// the columns [l·kVec, +kVec) of each pass to sums[q] (fma, fp32), and
/// lane 0 keeps the cluster's count and weight. So each sum, count and
/// weight has one writer, in row order. At every kFlushRows-th point of a
/// cluster its sums and weight move into the slice's fp64 partials at
/// `slot` + q (stored the first time, added to after) and restart at 0.
template <typename T, int kVec>
__device__ __forceinline__ void add_chunk(
        const UpdateArgs& args,
        const Workspace& ws,
        const SmemLayout& layout,
        unsigned char* smem,
        int buf,
        int rows,
        int64_t slot) {
    const int lane = threadIdx.x % 32;
    const uint32_t warp = threadIdx.x / 32;
    const int d = int(args.d);
    float* sums = reinterpret_cast<float*>(smem + layout.sums);
    float* weight_sums = reinterpret_cast<float*>(smem + layout.weight_sums);
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + layout.counts);
    const int32_t* labels = reinterpret_cast<const int32_t*>(smem + layout.labels) + buf * layout.rows;
    const float* weights = reinterpret_cast<const float*>(smem + layout.weights) + buf * layout.rows;
    const unsigned char* points = smem + layout.points + buf * layout.rows * layout.row_bytes;
    for (int g = 0; g < rows; g += 32) {
        const int r = g + lane;
        const uint32_t label = r < rows ? uint32_t(labels[r]) : 0;
        const float weight = r < rows && args.weights ? weights[r] : 1.0f;
        uint32_t mine = __ballot_sync(0xffffffffu, r < rows && label % kWarpsPerBlock == warp);
        while (mine != 0) {
            const int j = __ffs(mine) - 1;
            mine &= mine - 1;
            const uint32_t q = __shfl_sync(0xffffffffu, label, j);
            const float w = __shfl_sync(0xffffffffu, weight, j);
            uint32_t count = 0;
            float weight_sum = 0;
            if (lane == 0) {
                count = counts[q] + 1;
                weight_sum = weight_sums[q] + w;
            }
            count = __shfl_sync(0xffffffffu, count, 0);
            const bool flush = count % kFlushRows == 0;
            const bool first_flush = count == kFlushRows;
            const T* row = reinterpret_cast<const T*>(points + (g + j) * layout.row_bytes);
            float* sum = sums + q * d;
            double* partial = ws.sums + (slot + q) * d;
            // A pass at a time: unrolled, the kVec = 1 variants spill on
            // sm_90a, and the other warps' rows hide a pass's latency.
#pragma unroll 1
            for (int c = lane * kVec; c < d; c += 32 * kVec) {
                PointVector<T, kVec> staged;
                staged.load_shared(row + c);
                float v[kVec], acc[kVec];
                staged.to_float(v);
                load_floats(sum + c, acc);
#pragma unroll
                for (int i = 0; i < kVec; i++) {
                    acc[i] = __fmaf_rn(v[i], w, acc[i]);
                }
                if (flush) {
#pragma unroll
                    for (int i = 0; i < kVec; i++) {
                        partial[c + i] = (first_flush ? 0.0 : partial[c + i]) + double(acc[i]);
                        acc[i] = 0;
                    }
                }
                store_floats(sum + c, acc);
            }
            if (lane == 0) {
                if (flush) {
                    ws.weights[slot + q] = (first_flush ? 0.0 : ws.weights[slot + q]) + double(weight_sum);
                    weight_sum = 0;
                }
                counts[q] = count;
                weight_sums[q] = weight_sum;
            }
        }
    }
}

/** Per slice task (b, p), blocks grid-stride over the B·P tasks: the
 * slice's rows (the p-th of P near-equal runs of problem b's rows), summed
 * per cluster in shared memory (add_chunk), chunk by chunk, the next chunk
 * staged by cp.async while one is summed. Then the slice's partials: each
 * cluster's
 * sums and weight since its last flush are added to (or, never flushed,
 * stored in) its fp64 slot, and its count is stored. Every slot is
 * written, empty clusters' too, so the finish reads no stale value.
 */
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
        slice_sums_kernel(UpdateArgs args, Workspace ws, SmemLayout layout, int64_t slices, int copy_bytes) {
    extern __shared__ __align__(16) unsigned char smem[];
    float* sums = reinterpret_cast<float*>(smem + layout.sums);
    float* weight_sums = reinterpret_cast<float*>(smem + layout.weight_sums);
    uint32_t* counts = reinterpret_cast<uint32_t*>(smem + layout.counts);
    // k·d and k fit in shared memory; N, B·P < 2^32 (P <= max(1, N / 256)
    // and B·N < 2^32): 32-bit divisions, no 64-bit division subroutine.
    const int k = int(args.k), d = int(args.d);
    const uint32_t n = uint32_t(args.n), p_count = uint32_t(slices);
    // Slice p has n / P rows, one more for the first n % P slices.
    const uint32_t slice_rows = n / p_count, longer = n % p_count;
    const int64_t chunk_rows = layout.rows;
    const int64_t tasks = args.batch * slices;
    for (int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
        const uint32_t b = uint32_t(task) / p_count, p = uint32_t(task) % p_count;
        const int64_t first = int64_t(b) * n + int64_t(p) * slice_rows + min(p, longer);
        const int64_t end = first + slice_rows + (p < longer ? 1 : 0);
        // The previous slice's partials are written: its sums may go.
        __syncthreads();
        stage_chunk<T>(args, layout, smem, 0, first, int(min(end - first, chunk_rows)), copy_bytes);
        for (int i = threadIdx.x; i < k * d; i += kThreads) {
            sums[i] = 0;
        }
        for (int q = threadIdx.x; q < k; q += kThreads) {
            weight_sums[q] = 0;
            counts[q] = 0;
        }
        // Zeros before any add, and before the partials of a slice of no rows.
        __syncthreads();
        int buf = 0;
        for (int64_t row0 = first; row0 < end; row0 += chunk_rows, buf ^= 1) {
            const int64_t next = row0 + chunk_rows;
            if (next < end) {
                stage_chunk<T>(args, layout, smem, buf ^ 1, next, int(min(end - next, chunk_rows)), copy_bytes);
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads();
            add_chunk<T, kVec>(args, ws, layout, smem, buf, int(min(end - row0, chunk_rows)), task * k);
            // Every warp is done with this buffer before the chunk after
            // next is staged into it.
            __syncthreads();
        }
        // Any thread may finish any slot: the barrier above orders the
        // adds and flushes (shared and global) before these reads.
        double* partial = ws.sums + task * k * d;
        for (int i = threadIdx.x; i < k * d; i += kThreads) {
            const bool flushed = counts[i / d] >= kFlushRows;
            partial[i] = (flushed ? partial[i] : 0.0) + double(sums[i]);
        }
        for (int q = threadIdx.x; q < k; q += kThreads) {
            const int64_t s = task * k + q;
            const bool flushed = counts[q] >= kFlushRows;
            ws.weights[s] = (flushed ? ws.weights[s] : 0.0) + double(weight_sums[q]);
            ws.counts[s] = counts[q];
        }
    }
}

/// cluster_means_kernel's view of every cluster: one partial row per slice
/// of its problem, in slice order.
struct SlicePartials {
    using Value = double;
    const double* sums;
    const double* weights;
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
    __device__ PartialRows<double> rows(uint32_t q) const {
        // Slot of (problem q / K, slice 0), cluster q % K.
        const int64_t first = int64_t(q / k) * slices * k + q % k;
        return PartialRows<double>{sums + first * d, int64_t(k) * d, weights + first, counts + first, k, slices};
    }
};

/// A cluster's points, as the finish added them.
struct ClusterCounts {
    const int64_t* counts;

    __device__ int64_t operator()(int64_t q) const {
        return counts[q];
    }
};

int element_bytes(PointType t) {
    return t == PointType::F32 ? 4 : 2;
}

/// The launch's plan: shared memory, slices per problem (P), grid.
struct Plan {
    SmemLayout smem;
    int64_t slices;
    unsigned grid;
};

/// The most chunk rows (a multiple of kMinChunkRows, up to kMaxChunkRows)
/// whose layout fits in `available` bytes; 0 if none does.
int64_t chunk_rows(const UpdateArgs& args, int64_t available) {
    for (int64_t rows = kMaxChunkRows; rows >= kMinChunkRows; rows -= kMinChunkRows) {
        if (smem_layout(args.k, args.d, element_bytes(args.x_type), rows).total <= available) {
            return rows;
        }
    }
    return 0;
}

/** Slices per problem: of the counts that keep each slice at least
 * max(kMinSliceRows, k) rows and the B·P tasks within about two waves of
 * `slots` resident blocks, the one that leaves the fewest turns of the
 * waves idle (the smallest such).
 */
int64_t slices_per_problem(int64_t batch, int64_t n, int64_t k, int64_t slots) {
    const int64_t most =
            std::max<int64_t>(1, std::min(n / std::max(kMinSliceRows, k), (2 * slots + batch - 1) / batch));
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
    return best;
}

/// A deterministic function of the shape, the point type and the current
/// GPU's limits: workspace size and launch agree.
Plan make_plan(const UpdateArgs& args) {
    const DeviceLimits limits = device_limits();
    const int64_t rows = chunk_rows(args, int64_t(limits.smem_per_block));
    FAISS_THROW_IF_NOT_FMT(rows > 0, "on-chip update: k = %ld, d = %ld do not fit in shared memory", long(args.k),
                           long(args.d));
    Plan plan;
    plan.smem = smem_layout(args.k, args.d, element_bytes(args.x_type), rows);
    const int64_t resident = std::clamp<int64_t>(
            int64_t(limits.smem_per_multiprocessor) / (plan.smem.total + int64_t(limits.smem_reserved_per_block)), 1,
            kMaxBlocksPerSm);
    const int64_t slots = limits.multiprocessors * resident;
    plan.slices = slices_per_problem(args.batch, args.n, args.k, slots);
    plan.grid = unsigned(std::min(args.batch * plan.slices, slots));
    return plan;
}

/// The widest cp.async piece (16, 8 or 4 bytes) that x, the row stride and
/// a row's d coordinates are all multiples of; else single coordinates
/// (16-bit ones only: fp32 rows always take 4-byte pieces).
int copy_bytes(const UpdateArgs& args, int64_t element_bytes) {
    const uintptr_t x = reinterpret_cast<uintptr_t>(args.x);
    for (const int64_t bytes : {16, 8, 4}) {
        if (x % bytes == 0 && args.ldx * element_bytes % bytes == 0 && args.d * element_bytes % bytes == 0) {
            return int(bytes);
        }
    }
    return int(element_bytes);
}

/// The widest run of coordinates per lane (kVec = 4, 2, 1) that d is a
/// multiple of, so that each run lies in its row and the sums take aligned
/// vector accesses. Wider is not taken where a warp's lanes would cover
/// more than one row per pass (idle lanes, no gain).
template <typename T, int kVec>
void launch_slice_sums(const UpdateArgs& args, const Workspace& ws, const Plan& plan, cudaStream_t stream) {
    if constexpr (kVec > 1) {
        if (args.d % kVec != 0 || args.d < 32 * kVec) {
            launch_slice_sums<T, kVec / 2>(args, ws, plan, stream);
            return;
        }
    }
    const auto kernel = slice_sums_kernel<T, kVec>;
    const cudaError_t attr =
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(plan.smem.total));
    FAISS_THROW_IF_NOT_FMT(attr == cudaSuccess, "on-chip update: cannot reserve %ld bytes of shared memory: %s",
                           long(plan.smem.total), cudaGetErrorString(attr));
    kernel<<<plan.grid, kThreads, size_t(plan.smem.total), stream>>>(
            args, ws, plan.smem, plan.slices, copy_bytes(args, sizeof(T)));
    check_launch("slice_sums");
}

} // namespace

OnChipFit onchip_fit(const UpdateArgs& args) {
    const SmemLayout smallest = smem_layout(args.k, args.d, element_bytes(args.x_type), kMinChunkRows);
    return OnChipFit{size_t(smallest.total), device_limits().smem_per_block};
}

size_t onchip_workspace_bytes(const UpdateArgs& args) {
    return Workspace(nullptr, args.batch, args.k, args.d, make_plan(args).slices).total;
}

void onchip_update(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const Plan plan = make_plan(args);
    const Workspace ws(workspace, args.batch, args.k, args.d, plan.slices);
    with_point_type(args.x_type, [&](auto point) { launch_slice_sums<decltype(point), 4>(args, ws, plan, stream); });
    const int64_t clusters = args.batch * args.k;
    const SlicePartials partials{ws.sums, ws.weights, ws.counts, uint32_t(args.k), args.d, plan.slices,
                                 uint32_t(clusters)};
    launch_cluster_means(args, partials, clusters, ws.cluster_shift, ws.cluster_counts, stream);
    launch_problem_stats(args, ClusterCounts{ws.cluster_counts}, ws.cluster_shift, stream);
}

} // namespace kernels
} // namespace faiss_flash

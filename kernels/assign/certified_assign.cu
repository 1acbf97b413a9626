// Certified assignment of fp32 points (see certified_assign.cuh): the
// certification bound, the per-problem compaction of the rows it leaves,
// the scatter of their rescanned labels and the exact objective.

#include "certified_assign.cuh"

#include <cmath>

#include <cuda_fp16.h>

#include <faiss/impl/FaissAssert.h>

#include "flash_assign_sm90.cuh"
#include "../util/launch_check.h"
#include "../util/operands.cuh"
#include "../warp/warp_reduce.cuh"

namespace faiss_flash {
namespace kernels {

namespace {

/// Compaction: blocks of 256 threads take 1024 rows of one problem, in
/// four rounds of 256 consecutive rows (row order is rank order).
struct CompactPolicy {
    static constexpr int kThreads = 256;
    static constexpr int kRounds = 4;
    static constexpr int kRows = kThreads * kRounds;
};

/// Exact objective: blocks of 8 warps, each warp 8 rows, one at a time.
struct ObjectivePolicy {
    static constexpr int kWarps = 8;
    static constexpr int kRowsPerWarp = 8;
    static constexpr int kRows = kWarps * kRowsPerWarp;
};

int64_t compact_chunks(int64_t n) {
    return (n + CompactPolicy::kRows - 1) / CompactPolicy::kRows;
}

int64_t objective_blocks(int64_t n) {
    return (n + ObjectivePolicy::kRows - 1) / ObjectivePolicy::kRows;
}

/// The scratch, carved from one allocation (16-byte aligned pieces).
struct Workspace {
    __half* rows = nullptr;       ///< B·N compacted split rows (3·d_part halves each)
    int32_t* ids = nullptr;       ///< B·N: the row of problem b each compacted row came from
    int32_t* labels = nullptr;    ///< B·N: the rescan's labels of the compacted rows
    float* margins = nullptr;     ///< B·N: the fast pass's margins
    int32_t* chunk_counts = nullptr; ///< B × compact_chunks: uncertified rows per chunk
    unsigned* c_max2 = nullptr;   ///< B: bits of max_j ||c_j||² (an integer max of non-negative floats)
    double* objective = nullptr;  ///< B × objective_blocks: the exact objective's partials
    double* assign_partials = nullptr; ///< the two assignment passes' own partials (unused)
    __half* c_fast = nullptr;     ///< B·K fp16 centroids of the fast pass, rows of d_part
    float* c_fast_bias = nullptr; ///< B·K: their score bias
    float* c_fast_bias_padded = nullptr; ///< B·k_pad: the same padded per problem (+inf past k)
    int32_t* c_exps = nullptr;    ///< B: the centroids' scale exponent per problem
    unsigned* c_abs_max = nullptr; ///< B: scratch of scale_centroids

    Workspace(void* base, const AssignArgs& split, int d_part) {
        unsigned char* p = static_cast<unsigned char*>(base);
        size_t offset = 0;
        auto take = [&](size_t bytes) {
            unsigned char* at = p ? p + offset : nullptr;
            offset += (bytes + 15) / 16 * 16;
            return at;
        };
        const int64_t rows_total = split.batch * split.n;
        rows = reinterpret_cast<__half*>(take(sizeof(__half) * rows_total * split.d_pad));
        ids = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * rows_total));
        labels = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * rows_total));
        margins = reinterpret_cast<float*>(take(sizeof(float) * rows_total));
        chunk_counts = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * split.batch * compact_chunks(split.n)));
        c_max2 = reinterpret_cast<unsigned*>(take(sizeof(unsigned) * split.batch));
        objective = reinterpret_cast<double*>(take(sizeof(double) * split.batch * objective_blocks(split.n)));
        assign_partials = reinterpret_cast<double*>(take(sizeof(double) * objective_partials_bound(split)));
        c_fast = reinterpret_cast<__half*>(take(sizeof(__half) * split.batch * split.k * d_part));
        c_fast_bias = reinterpret_cast<float*>(take(sizeof(float) * split.batch * split.k));
        c_fast_bias_padded = reinterpret_cast<float*>(take(sizeof(float) * split.batch * padded_terms(split.k)));
        c_exps = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * split.batch));
        c_abs_max = reinterpret_cast<unsigned*>(take(sizeof(unsigned) * split.batch));
        bytes = offset;
    }
    size_t bytes = 0;
};

/** Whether the fast pass's label of a row is its exact argmin.
 *
 * The operands (split_points' hi parts, scale_centroids): x̂ = rn16(x·2^ex)
 * and ĉ = rn16(c·2^ec), one ex and one ec per problem, ec putting the
 * largest |c| in [2^14, 2^15) (or clamped at 60: 2^-ec <= 2^-60). The fast
 * score is s' = fl(bias' − 2·P) (IP: −P) with P the tensor cores' fp32 sum
 * of the exact products x̂_i·ĉ_i and bias' = fl32(||c||²)·2^(ex+ec): the
 * exact score scaled by 2^(ex+ec), so the margin is unscaled by it first.
 * Per element |x̂ − x·2^ex| <= 2^-11·|x|·2^ex + 2^-25 (the second term for
 * fp16 subnormals), the same for ĉ. With X = ||x||, C = max_j ||c_j||,
 * Cauchy–Schwarz and 2^-ec <= 2^-14·C + 2^-60, in unscaled units:
 *   |P / 2^(ex+ec) − x·c| <= (2^-10 + 2^-22)·X·C
 *                             + 1.001·2^-25·√d·(C·2^-ex + X·2^-ec)
 *                             + 1.01·d·2^-22·X·C,
 * the last term for the fp32 sum: one rounding of the running sum per
 * term, doubled for the hardware's truncating alignment. The score rounds
 * once, 2^-24 of |s| <= C² + 2.01·X·C, and fl32(||c||²), an fp32 sum of
 * squares, is within d·2^-24·C² of ||c||²; roundings in the fp32 subnormal
 * range add at most 2^-147·2^-(ex+ec). So every fast score is within
 *   E = a·X·C + b·C² + g·C + h·X + 2^-147·2^-(ex+ec)  of the exact one,
 *   a = 2·(2^-10 + 2^-22 + 1.01·d·2^-22 + 1.001·√d·2^-39) + 2.01·2^-24,
 *   b = (d + 2)·2^-24,  g = 2.002·√d·2^-25·2^-ex,  h = 2.002·√d·2^-85
 * (inner product: half the product terms and no bias, so E holds too).
 * If margin = s(2) − s(1) of the fast scores exceeds 2E, every other
 * centroid j has s_j >= s̃_j − E >= s̃(2) − E > s̃(1) + E >= s_label: the
 * label is the exact argmin, strictly (so the tie rule is not at stake).
 * X and C come from fp32 sums of squares (relative error <= d·2^-24), made
 * upper bounds here; the margin's own fp32 rounding is taken off. A
 * non-finite margin or norm (an overflowed bias') certifies nothing. About
 * 2E = 4e-3·X·C at d = 128.
 */
__device__ __forceinline__ bool row_certified(float margin, float x_norm2, float c_max2, int32_t ex, int32_t ec, int64_t d) {
    if (!isfinite(margin)) {
        return false;
    }
    const double dd = double(d), root_d = sqrt(dd);
    const double inflate = 1.0 + dd * 0x1p-23;
    const double X = sqrt(double(x_norm2) * inflate), C = sqrt(double(c_max2) * inflate);
    const double a = 2 * (0x1p-10 + 0x1p-22 + 1.01 * dd * 0x1p-22 + 1.001 * root_d * 0x1p-39) + 2.01 * 0x1p-24;
    const double b = (dd + 2) * 0x1p-24;
    const double g = 2.002 * root_d * 0x1p-25 * ldexp(1.0, -ex);
    const double h = 2.002 * root_d * 0x1p-85;
    const double E = a * X * C + b * C * C + g * C + h * X + ldexp(1.0, -147 - ex - ec);
    return ldexp(double(margin), -ex - ec) * (1 - 0x1p-22) > 2 * E;
}

struct CompactArgs {
    const float* margins;
    const float* x_norms;
    const unsigned* c_max2;
    const int32_t* point_exps;
    const int32_t* centroid_exps;
    int64_t n, d;
    int32_t* chunk_counts;
};

__device__ __forceinline__ bool row_uncertified(const CompactArgs& a, int64_t b, int64_t row) {
    const int64_t r = b * a.n + row;
    return row < a.n && !row_certified(a.margins[r], a.x_norms[r], __uint_as_float(a.c_max2[b]), a.point_exps[b],
                                       a.centroid_exps[b], a.d);
}

/// Grid (chunks, B): the uncertified rows of each 1024-row chunk.
__global__ void count_uncertified_kernel(CompactArgs a) {
    using P = CompactPolicy;
    const int64_t b = blockIdx.y, chunk_row0 = int64_t(blockIdx.x) * P::kRows;
    int count = 0;
#pragma unroll
    for (int round = 0; round < P::kRounds; round++) {
        count += __syncthreads_count(row_uncertified(a, b, chunk_row0 + round * P::kThreads + threadIdx.x));
    }
    if (threadIdx.x == 0) {
        a.chunk_counts[b * gridDim.x + blockIdx.x] = count;
    }
}

/** Grid (chunks, B): moves each uncertified row to its place, in row order:
 * compacted row b·N + (uncertified rows of the chunks before, then of the
 * rounds before, then rank in the round). The last chunk of a problem
 * writes its total, the rescan's rows_valid.
 */
__global__ void gather_uncertified_kernel(CompactArgs a, const __half* split_rows, int64_t ld_split, int row_halves, __half* compact_rows, int32_t* ids, int32_t* rescanned) {
    using P = CompactPolicy;
    constexpr int kWarps = P::kThreads / 32;
    __shared__ int warp_counts[kWarps];
    __shared__ int64_t moves[P::kThreads]; // source row of each compacted slot of the round
    __shared__ int64_t base_shared;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t b = blockIdx.y, chunk_row0 = int64_t(blockIdx.x) * P::kRows;

    // The chunks before, in a fixed order.
    int64_t before = 0;
    for (int64_t c = threadIdx.x; c < blockIdx.x; c += P::kThreads) {
        before += a.chunk_counts[b * gridDim.x + c];
    }
    before = warp_sum(before);
    if (lane == 0) {
        warp_counts[warp] = int(before);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int64_t total = 0;
        for (int w = 0; w < kWarps; w++) {
            total += warp_counts[w];
        }
        base_shared = total;
    }
    __syncthreads();
    int64_t base = base_shared;

    const int vectors = row_halves / 8; // 16-byte pieces of a split row
    for (int round = 0; round < P::kRounds; round++) {
        const int64_t row = chunk_row0 + round * P::kThreads + threadIdx.x;
        const bool move = row_uncertified(a, b, row);
        const unsigned ballot = __ballot_sync(0xffffffffu, move);
        __syncthreads(); // warp_counts and moves of the round before are read
        if (lane == 0) {
            warp_counts[warp] = __popc(ballot);
        }
        __syncthreads();
        int rank = __popc(ballot & ((1u << lane) - 1)), moved = 0;
        for (int w = 0; w < kWarps; w++) {
            rank += w < warp ? warp_counts[w] : 0;
            moved += warp_counts[w];
        }
        if (move) {
            moves[rank] = row;
            ids[b * a.n + base + rank] = int32_t(row);
        }
        __syncthreads();
        // The block copies the moved rows as one flat list of 16-byte
        // pieces: independent loads, many in flight.
        for (int piece = threadIdx.x; piece < moved * vectors; piece += P::kThreads) {
            const int slot = piece / vectors, v = piece % vectors;
            const uint4* src = reinterpret_cast<const uint4*>(split_rows + (b * a.n + moves[slot]) * ld_split);
            uint4* dst = reinterpret_cast<uint4*>(compact_rows + (b * a.n + base + slot) * row_halves);
            dst[v] = src[v];
        }
        base += moved;
    }
    if (blockIdx.x == gridDim.x - 1 && threadIdx.x == 0) {
        rescanned[b] = int32_t(base);
    }
}

/// Grid (ceil(N / 256), B): the rescan's labels back to their rows.
__global__ void scatter_labels_kernel(const int32_t* rescanned, const int32_t* ids, const int32_t* compact_labels, int64_t n, int32_t* labels) {
    const int64_t b = blockIdx.y, t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t < rescanned[b]) {
        labels[b * n + ids[b * n + t]] = compact_labels[b * n + t];
    }
}

/** Grid (objective_blocks, B): per block the exact fp64 sum, over its rows,
 * of ||x − c_label||² (L2) or <x, c_label> (IP), added in a fixed order.
 */
__global__ void exact_objective_kernel(const float* x, int64_t ldx, const float* centroids, int64_t k, int64_t d, const int32_t* labels, int64_t n, bool inner_product, double* partials) {
    using P = ObjectivePolicy;
    __shared__ double warp_sums[P::kWarps];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t b = blockIdx.y;
    double warp_total = 0;
    for (int i = 0; i < P::kRowsPerWarp; i++) {
        const int64_t row = int64_t(blockIdx.x) * P::kRows + warp * P::kRowsPerWarp + i;
        if (row >= n) {
            break;
        }
        const float* xr = x + (b * n + row) * ldx;
        const float* cr = centroids + (b * k + labels[b * n + row]) * d;
        double s = 0;
        for (int64_t j = lane; j < d; j += 32) {
            const double xv = xr[j], cv = cr[j];
            s += inner_product ? xv * cv : (xv - cv) * (xv - cv);
        }
        warp_total += warp_sum(s);
    }
    if (lane == 0) {
        warp_sums[warp] = warp_total;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0;
        for (int w = 0; w < P::kWarps; w++) {
            total += warp_sums[w];
        }
        partials[b * gridDim.x + blockIdx.x] = total;
    }
}

} // namespace

bool certified_assign_supported(const AssignArgs& split, int d_part) {
    AssignArgs fast = split;
    fast.d_pad = d_part;
    // The compaction's grid has one y index per problem.
    return split.batch <= 65535 && sm90_assign_supported(fast, Operand::F16) &&
            sm90_assign_supported(split, Operand::F16x3);
}

size_t certified_assign_workspace_bytes(const AssignArgs& split) {
    return Workspace(nullptr, split, split.d_pad / 3).bytes;
}

ObjectivePartials certified_assign(const CertifiedAssignArgs& args, void* workspace, cudaStream_t stream) {
    const AssignArgs& split = args.split;
    FAISS_THROW_IF_NOT_MSG(split.d_pad == 3 * args.d_part && args.d_part % 8 == 0 && split.ldx % 8 == 0 &&
                                   !split.distances && !split.margins && split.x_norms,
                           "certified_assign: split rows are 3 * d_part wide (d_part a multiple of 8), with the "
                           "point norms, without distances or margins");
    FAISS_THROW_IF_NOT_MSG(certified_assign_supported(split, args.d_part),
                           "certified_assign: this device or shape does not run the Hopper assignment");
    const Workspace ws(workspace, split, args.d_part);
    const int64_t batch = split.batch, n = split.n;

    // Fast pass: the points' hi parts (the first d_part columns of their
    // split rows) against fp16 centroids of one scale per problem.
    scale_centroids(args.centroids, batch, split.k, args.d, args.d_part, args.point_exps, !split.inner_product,
                    ws.c_abs_max, ws.c_exps, ws.c_fast, ws.c_fast_bias, ws.c_max2, stream);
    pad_terms(ws.c_fast_bias, batch, split.k, padded_terms(split.k), INFINITY, ws.c_fast_bias_padded, stream);
    AssignArgs fast = split;
    fast.c = ws.c_fast;
    fast.ldc = args.d_part;
    fast.c_bias = ws.c_fast_bias;
    fast.c_bias_padded = ws.c_fast_bias_padded;
    fast.c_multiplier = nullptr;
    fast.c_multiplier_padded = nullptr;
    fast.d_pad = args.d_part;
    fast.margins = ws.margins;
    fast.obj_partials = ws.assign_partials;
    flash_assign_sm90(fast, Operand::F16, stream);

    // Certification and compaction.
    const CompactArgs compact{ws.margins, split.x_norms, ws.c_max2, args.point_exps, ws.c_exps, n, args.d,
                              ws.chunk_counts};
    const dim3 chunks(unsigned(compact_chunks(n)), unsigned(batch));
    count_uncertified_kernel<<<chunks, CompactPolicy::kThreads, 0, stream>>>(compact);
    check_launch("certified_assign: count");
    gather_uncertified_kernel<<<chunks, CompactPolicy::kThreads, 0, stream>>>(
            compact, static_cast<const __half*>(split.x), split.ldx, split.d_pad, ws.rows, ws.ids, args.rescanned);
    check_launch("certified_assign: gather");

    // Rescan of the compacted rows with the F16x3 products.
    AssignArgs rescan = split;
    rescan.x = ws.rows;
    rescan.ldx = split.d_pad;
    rescan.rows_valid = args.rescanned;
    rescan.labels = ws.labels;
    rescan.obj_partials = ws.assign_partials;
    flash_assign_sm90(rescan, Operand::F16x3, stream);
    scatter_labels_kernel<<<dim3(unsigned((n + 255) / 256), unsigned(batch)), 256, 0, stream>>>(
            args.rescanned, ws.ids, ws.labels, n, split.labels);
    check_launch("certified_assign: scatter");

    exact_objective_kernel<<<dim3(unsigned(objective_blocks(n)), unsigned(batch)), ObjectivePolicy::kWarps * 32, 0,
                             stream>>>(args.x, args.ldx, args.centroids, split.k, args.d, split.labels, n,
                                       split.inner_product, ws.objective);
    check_launch("certified_assign: objective");
    ObjectivePartials objective;
    objective.values = ws.objective;
    objective.per_problem = objective_blocks(n);
    return objective;
}

} // namespace kernels
} // namespace faiss_flash

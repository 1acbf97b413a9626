// FlashAssign: fused nearest-centroid search on tensor cores. Point tiles
// and centroid tiles stream through shared memory, products accumulate in
// registers, and each CTA keeps an online argmin: the N×K distance matrix
// never exists. Host-facing declarations only (no CUDA types), so host code
// can call the launch helper.

#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace faiss_flash {
namespace kernels {

/// Operand arithmetic of the assignment products (see warp/mma_sm80.cuh).
enum class Operand {
    F16,    ///< fp16 operands, exact products, fp32 accumulation
    BF16,   ///< bf16 operands, exact products, fp32 accumulation
    TF32,   ///< fp32 operands rounded to tf32
    TF32x3, ///< fp32 operands, 3xTF32 split: fp32-accurate products
    /** fp32 operands split into fp16 pairs (hi + lo, scaled by powers of
     * two: util/operands.cuh): one fp16 product of rows 3·d_pad wide adds
     * hi·hi + hi·lo + lo·hi, fp32-accurate at the fp16 tensor-core rate,
     * which is twice the tf32 rate. Hopper (sm90) path only.
     */
    F16x3,
};

/// Bytes per element of an operand type in memory.
inline int operand_bytes(Operand op) {
    return op == Operand::TF32 || op == Operand::TF32x3 ? 4 : 2;
}

/// Operand elements per padded dimension: F16x3 stores three per value.
inline int operand_width_factor(Operand op) {
    return op == Operand::F16x3 ? 3 : 1;
}

/// Elements per 16-byte chunk: rows are copied in such chunks, so d is
/// padded to a multiple of it (with zeros) in every operand buffer.
inline int operand_chunk(Operand op) {
    return 16 / operand_bytes(op);
}

/// Column granularity of AssignArgs::k_pad: the widest centroid tile of
/// the Hopper kernels, whose tiles' terms are copied whole.
constexpr int64_t kTermsTile = 256;

/// k rounded up to kTermsTile.
inline int64_t padded_terms(int64_t k) {
    return (k + kTermsTile - 1) / kTermsTile * kTermsTile;
}

struct AssignArgs {
    const void* x = nullptr; ///< B·N rows of ldx elements (row b·N + i)
    int64_t ldx = 0;
    const void* c = nullptr; ///< B·K rows of ldc elements (row b·K + j)
    int64_t ldc = 0;
    /// B·K per-centroid score bias: L2 ||c||², IP 0.
    const float* c_bias = nullptr;
    /** F16x3 only: B·K factors turning a product of the scaled operands
     * into its score term (-2 for L2, -1 for IP, over the two scales).
     * nullptr otherwise.
     */
    const float* c_multiplier = nullptr;
    /** The same terms with each problem's row padded to k_pad columns
     * (bias +inf, multiplier 0 past k), for the Hopper kernels' bulk copies
     * of whole tiles; k_pad = k rounded up to kTermsTile.
     */
    const float* c_bias_padded = nullptr;
    const float* c_multiplier_padded = nullptr;
    int64_t k_pad = 0;
    /// B·N squared norms of the points (L2 only; nullptr for IP).
    const float* x_norms = nullptr;
    int64_t batch = 1;
    int64_t n = 0;
    int64_t k = 0;
    /// Operand row width: d rounded up to operand_chunk() (times 3 for
    /// F16x3); the padding columns are zeros.
    int d_pad = 0;
    bool inner_product = false;

    int32_t* labels = nullptr; ///< B·N out
    float* distances = nullptr; ///< B·N out (L2: squared distance; IP: <x,c>); may be null
    /** Partials of the objective (objective_partials_bound() doubles; one
     * per CTA, or per warpgroup): the share of its rows without the
     * points' norms, the sum of their best
     * scores (L2: ||c||² - 2<x,c>; IP: <x,c>); the update adds them up
     * with each problem's sum of ||x||² (ObjectivePartials). The kernels
     * then never read a norm unless distances are wanted.
     */
    double* obj_partials = nullptr;

    /** Hopper kernels, fp16 operands only (nullptr elsewhere): B·N out,
     * each row's second-best score minus its best (>= 0; +inf when only one
     * column scores), for the certification of certified_assign.cuh.
     */
    float* margins = nullptr;
    /** Optional B row counts per problem (device memory): rows at or past
     * rows_valid[b] are neither scored nor written, and point blocks wholly
     * past it end at once. For the compacted rows of certified_assign.cuh;
     * Hopper kernels, one point block per CTA.
     */
    const int32_t* rows_valid = nullptr;
};

/** An upper bound of the objective partials of one launch (the size of
 * obj_partials): batch × (ceil(n / 128) + 1) covers one per 128-row tile
 * (sm80 kernel, Hopper streaming agent) and two per 256-row block (Hopper
 * resident agent: one per consumer warpgroup).
 */
int64_t objective_partials_bound(const AssignArgs& args);

/** Launches FlashAssign on `stream`; throws faiss::FaissException on a
 * launch error. Returns the objective partials per problem it wrote:
 * obj_partials holds that many per problem, problem-major.
 */
int64_t flash_assign(const AssignArgs& args, Operand op, cudaStream_t stream);

/// sums[b] = the sum of problem b's n point norms, in a fixed order (fp64).
void sum_point_norms(const float* x_norms, int64_t batch, int64_t n, double* sums, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

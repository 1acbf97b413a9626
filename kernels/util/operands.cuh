// Operand preparation for FlashAssign: the tensor-core operand copies of
// points and centroids (converted, rows padded to 16 bytes with zeros) and
// the per-row terms of the score (point norms, centroid bias). Also the
// small per-centroid operations of the Lloyd driver (post-processing,
// initial centroids). Host-facing declarations.

#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "../assign/flash_assign.cuh"
#include "../update/update_centroids.cuh"

namespace faiss_flash {
namespace kernels {

/** dst (rows × ld_dst, operand type op) <- src (rows × ld_src, type t),
 * columns [d, ld_dst) zeroed; norms[r] = sum of squares of the converted row
 * (if norms != nullptr). For op == TF32/TF32x3 the values stay fp32.
 * dst == nullptr: norms only, of the values as they are (for points whose
 * storage is already the operand type).
 */
void convert_rows(
        const void* src,
        int64_t ld_src,
        PointType t,
        int64_t rows,
        int64_t d,
        void* dst,
        int64_t ld_dst,
        Operand op,
        float* norms,
        cudaStream_t stream);

/** F16x3 operands (Operand::F16x3). A value v, scaled by a power of two
 * 2^e, is split into fp16 hi = rn(v·2^e) and lo = rn(v·2^e - hi); rows are
 * 3·d_pad wide: points [hi | hi | lo], centroids [hi | lo | hi], so their
 * fp16 product sums hi·hi + hi·lo + lo·hi (the lo·lo term, ~2^-22 of |x||c|,
 * is dropped). e brings the largest |value| below 2^15 (fp16 overflows at
 * 65504): one e per problem for the points, one per row for the centroids,
 * clamped to [-62, 60] so the multipliers stay normal floats.
 *
 * split_exponents: exps[b] for the n × d points of each problem b.
 */
void split_exponents(const float* x, int64_t ldx, int64_t batch, int64_t n, int64_t d, int32_t* exps, cudaStream_t stream);

/// Points -> [hi | hi | lo] rows of 3·d_pad fp16 (dst), norms[r] = sum of
/// squares of the fp32 row (L2; may be null).
void split_points(const float* x, int64_t ldx, int64_t batch, int64_t n, int64_t d, int d_pad, const int32_t* exps,
                  void* dst, float* norms, cudaStream_t stream);

/// Centroids -> [hi | lo | hi] rows of 3·d_pad fp16 (dst); bias = ||c||²
/// (L2) or 0 (IP); multiplier = (L2 ? -2 : -1) / (2^e_row · 2^exps[b]),
/// which turns the product of the scaled operands into its score term.
void split_centroids(const float* c, int64_t batch, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, bool l2,
                     void* dst, float* bias, float* multiplier, cudaStream_t stream);

/** Centroids -> fp16 rows rn(c·2^e_b) of d_pad (dst), one exponent e_b per
 * problem (exps, out: it brings the problem's largest |c| below 2^15, as
 * split_exponents; max_bits: B words of scratch); bias = ||c||²·2^(e_b +
 * point_exps[b]) (L2, the fp32 norm of split_centroids) or 0 (IP). With the
 * hi parts of split_points' rows, a score of these operands is the exact
 * score times 2^(e_b + point_exps[b]), one positive factor per problem:
 * the same argmin. norm_max_bits (B, out): max_j ||c_j||² of each problem
 * (any metric), as the bits of a non-negative float.
 */
void scale_centroids(const float* c, int64_t batch, int64_t k, int64_t d, int d_pad, const int32_t* point_exps, bool l2,
                     unsigned* max_bits, int32_t* exps, void* dst, float* bias, unsigned* norm_max_bits,
                     cudaStream_t stream);

/// dst[b·k_pad + j] = src[b·k + j] for j < k, fill for k <= j < k_pad.
void pad_terms(const float* src, int64_t batch, int64_t k, int64_t k_pad, float fill, float* dst, cudaStream_t stream);

/// True when every value of the rows × d matrix is finite (synchronizes).
bool all_finite(const void* x, int64_t ld, PointType t, int64_t rows, int64_t d, cudaStream_t stream);

/// Fills bias with zeros (inner product: no per-centroid term).
void zero_floats(float* v, int64_t count, cudaStream_t stream);

/// FAISS's post_process_centroids on rows × d fp32 centroids.
void post_process_rows(float* centroids, int64_t rows, int64_t d, bool spherical, bool round_to_int, cudaStream_t stream);

/// For every problem b: centroid i <- point point_rows[i] of problem b, for
/// first <= i < k (point_rows: device, k entries).
void gather_centroids(
        const void* x,
        int64_t ldx,
        PointType t,
        int64_t batch,
        int64_t n,
        int64_t d,
        int64_t k,
        const int32_t* point_rows,
        int64_t first,
        float* centroids,
        cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

// On-chip centroid update on tensor cores, for 16-bit points, unweighted,
// whose k × d fp32 sums fit in one block's registers: no global sort, no
// second pass over a sorted order. Each problem is cut into P contiguous
// slices of rows; a block sums a slice, its rows staged in chunks by
// cp.async, two chunks ahead. A ranking warp groups each chunk's rows by
// slab (16 consecutive clusters) with a stable warp multi-split, one chunk
// ahead of the others, and counts the clusters' rows; the sums of a slab
// are then one-hot matrix products on mma.sync,
//   sums[16 clusters × 32 dims] += onehot[16 × 16 rows] · X[16 rows × 32 dims],
// the rows of X gathered by ldmatrix.trans from the staged chunk, so a row
// costs the products of its own slab only (k/16 times fewer than a dense
// one-hot). Each warp owns up to four 16 × 32 accumulator tiles for the
// whole slice; the tensor cores add 16-bit values exactly into fp32 in a
// fixed order. The slices' fp32 partials are added in slice order in fp64.
// No float atomics (the counts are integer ones): bit-identical run to run
// on a given GPU (the slicing follows its SM count).
//
// Fused with the assignment (onchip_assign_and_sum; sm_90a, k <= 128,
// d <= 128), the points are read once per Lloyd step: a block holds its
// problem's centroids, assigns each chunk the TMA staged on wgmma (the
// assignment kernels' scores and tie rule), writes the chunk's one-hot
// matrix, and a third warpgroup adds the whole chunk as one wgmma product
//   sums^T[d × k8] += X^T[d × 128 rows] · onehot[128 rows × k8]
// (k8: k rounded up to 8, 104 or 128 columns; dense over the clusters: no
// ranking; the tensor cores have the room),
// after the next chunk's assignment products, which are on the critical path.
//
// The dispatcher's entry points (update_centroids.cuh has the contract).

#pragma once

#include <cstddef>
#include <string>

#include <cuda_runtime_api.h>

#include "update_centroids.cuh"

namespace faiss_flash {
namespace kernels {

/// Whether a shape and its points can take the on-chip update; if not,
/// why (a sentence naming the values).
struct OnChipFit {
    std::string why_not; ///< empty where it fits

    bool fits() const {
        return why_not.empty();
    }
};

OnChipFit onchip_fit(const UpdateArgs& args);

/// Scratch bytes of onchip_update for a shape that fits, on the current GPU.
size_t onchip_workspace_bytes(const UpdateArgs& args);

/// The update with on-chip sums; the shape must fit (onchip_fit), B·N and
/// B·K < 2^32 (the dispatcher checks both).
void onchip_update(const UpdateArgs& args, void* workspace, cudaStream_t stream);

/** The assignment fused into the on-chip update: each block also holds
 * its problem's centroids in shared memory and assigns every chunk it
 * stages (mma.sync, the same scores and tie rule as the assignment
 * kernels) before ranking and summing it, so the points are read once
 * per Lloyd step. args.labels is not read.
 */
struct OnChipAssign {
    const void* c = nullptr;        ///< B·K rows of ldc operand coordinates (the points' 16-bit type)
    int64_t ldc = 0;
    const float* c_bias = nullptr;  ///< B·K: ||c||² (L2); not read for IP
    bool inner_product = false;
    int32_t* labels = nullptr;      ///< B·N out
    double* obj_partials = nullptr; ///< out: per problem, one per slice (the return value), problem-major
};

/// Whether the fused assignment takes a shape: it fits the on-chip update,
/// k <= 128, d <= 128, B·N < 2^31; the kernel runs on sm_90a only (wgmma, TMA).
bool onchip_assign_fits(const UpdateArgs& args);

/// The fused assignment and slice sums (the shape must fit, as for
/// onchip_update); returns the objective partials per problem (handed to
/// onchip_finish as args.objective). The update is complete after
/// onchip_finish on the same workspace.
int64_t onchip_assign_and_sum(const UpdateArgs& args, const OnChipAssign& assign, void* workspace, cudaStream_t stream);
void onchip_finish(const UpdateArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

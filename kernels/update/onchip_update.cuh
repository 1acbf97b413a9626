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
// on a given GPU (the slicing follows its SM count). The dispatcher's entry points (update_centroids.cuh has the
// contract).

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

} // namespace kernels
} // namespace faiss_flash

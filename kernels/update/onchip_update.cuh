// On-chip centroid update, for shapes whose fp32 sums of every cluster
// (k × d) fit in one block's shared memory: no sort. Each problem is cut
// into P contiguous slices of rows; a block sums a slice in shared memory,
// its rows staged in chunks by cp.async, double-buffered. Warp w owns the
// clusters q ≡ w (mod 8) and adds the chunk's rows of its clusters in row
// order, a lane per run of columns: every sum has one writer and a fixed
// order, without atomics. A cluster's fp32 sum moves into the slice's fp64
// partial every kFlushRows of its points (as the sort-inverse update sums
// chunks of at most that many points in fp32), and at the slice's end.
// A cluster's partial sums are then added in slice order (fp64), its
// weights and counts by a fixed tree, as the sort-inverse update adds its
// chunks. Bit-identical run to run on a given GPU (the slicing follows its
// SM count and shared memory).
// The dispatcher's entry points (update_centroids.cuh has the contract).

#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

#include "update_centroids.cuh"

namespace faiss_flash {
namespace kernels {

/// Shared memory the on-chip update needs for a shape (with its smallest
/// chunk), and what the current GPU gives one block.
struct OnChipFit {
    size_t needed;
    size_t available;

    bool fits() const {
        return needed <= available;
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

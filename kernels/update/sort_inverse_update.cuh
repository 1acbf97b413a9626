// Sort-inverse centroid update: a stable radix sort of (cluster, point)
// pairs makes every cluster a contiguous segment of the sorted order. Each
// segment is cut into fixed chunks of at most kChunkRows points (an empty
// one into one chunk of none); one warp sums a chunk on chip (fp32, in
// point order). The only chunk of its cluster finishes the cluster there
// (mean, weight, shift); the chunks of a larger cluster write partial rows
// that a warp or block per cluster then adds in chunk order (fp64). Shifts
// are per-thread sums of squared moves in dimension order, then a fixed
// shuffle tree. No float atomics and no order that depends on scheduling
// (an integer atomic lists the larger clusters, but each is computed the
// same whichever team takes it): the result is bit-identical run to run.
// The dispatcher's entry points (update_centroids.cuh has the contract).

#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "update_centroids.cuh"

namespace faiss_flash {
namespace kernels {

/// Scratch bytes of sort_inverse_update for this shape.
size_t sort_inverse_workspace_bytes(int64_t batch, int64_t n, int64_t k, int64_t d);

/// The update by sort-inverse; B·N and B·K < 2^32 (the dispatcher checks).
void sort_inverse_update(const UpdateArgs& args, void* workspace, cudaStream_t stream);

} // namespace kernels
} // namespace faiss_flash

// Named CTA barriers: some warps of a block synchronise, or signal others,
// while the rest run on.

#pragma once

namespace faiss_flash {
namespace kernels {

/// Barrier `id` (1..15; 0 is __syncthreads' own) that completes when
/// `threads` threads (whole warps) arrived; the caller waits for it.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/// Arrives at barrier `id` without waiting: a producer's signal to the
/// warps that sync on it (its shared-memory writes before the arrival are
/// visible to them after their sync).
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

} // namespace kernels
} // namespace faiss_flash

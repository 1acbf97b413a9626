// Block-level Hopper pieces: mbarriers and 2D TMA tile loads (the bulk
// tensor copy engine) completing on an mbarrier.

#pragma once

#include "named_barrier.cuh"

#include <cstdint>

#include <cuda.h>

namespace faiss_flash {
namespace kernels {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/** The first 1024-byte boundary in a dynamic shared-memory array (the 128B
 * swizzle repeats every 1024 bytes), as an offset into it: a pointer that
 * went through an integer cast loses its address space, and every access
 * through it becomes a generic load or store (LD/ST on the long scoreboard)
 * instead of LDS/STS.
 */
__device__ __forceinline__ unsigned char* align_to_swizzle_atom(unsigned char* smem_raw) {
    return smem_raw + ((1024 - smem_addr(smem_raw) % 1024) % 1024);
}

__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}

/// Makes initialised barriers visible to the async proxy (the TMA).
__device__ __forceinline__ void fence_barrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
    asm volatile(
            "{\n.reg .pred done;\n"
            "WAIT_%=:\n"
            "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
            "@!done bra WAIT_%=;\n}\n" ::"r"(smem_addr(bar)),
            "r"(parity)
            : "memory");
}

/// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from
/// global to shared memory with the bulk copy engine; completes `bytes` of
/// the barrier's transaction count.
__device__ __forceinline__ void bulk_load(void* smem, const void* gmem, uint32_t bytes, uint64_t* bar) {
    asm volatile(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                    smem_addr(smem)),
            "l"(gmem), "r"(bytes), "r"(smem_addr(bar))
            : "memory");
}

/// Loads the box at (col, row) of a 2D tensor map into smem; completes
/// `bytes` of the barrier's transaction count.
__device__ __forceinline__ void tma_load_2d(void* smem, const CUtensorMap* map, int32_t col, int32_t row, uint64_t* bar) {
    asm volatile(
            "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
                    smem_addr(smem)),
            "l"(map), "r"(col), "r"(row), "r"(smem_addr(bar))
            : "memory");
}

} // namespace kernels
} // namespace faiss_flash

// Block-level global -> shared tile copies with cp.async (sm_80+), 16 bytes
// per thread per copy, zero-filled outside the valid rows/columns so the
// tensor cores see zeros in tile tails (their products add nothing); and
// the plain cp.async pieces of rows copied as they are.

#pragma once

#include <cstdint>

namespace faiss_flash {
namespace kernels {

/// 16-byte async copy; src_bytes = 0 writes zeros without reading src.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(src_bytes));
}

/// kBytes (4, 8 or 16) async copy, both addresses aligned to kBytes;
/// 16-byte pieces bypass L1 (the smaller ones cannot).
template <int kBytes>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    if constexpr (kBytes == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem));
    } else {
        static_assert(kBytes == 4 || kBytes == 8, "cp.async copies 4, 8 or 16 bytes");
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(dst), "l"(gmem), "n"(kBytes));
    }
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

/** Copies rows [row0, row0 + kRows) x columns [col0, col0 + kCols) of a
 * row-major global matrix (ld elements per row, 16-byte aligned rows) into
 * a shared tile with row stride kLdSmem. Rows >= n_rows and 16-byte column
 * chunks starting at or past n_cols become zeros.
 */
template <typename T, int kRows, int kCols, int kLdSmem, int kThreads>
__device__ __forceinline__ void copy_tile_async(
        T* smem,
        const T* gmem,
        int64_t ld,
        int64_t row0,
        int64_t n_rows,
        int col0,
        int n_cols,
        int tid) {
    constexpr int kChunk = 16 / sizeof(T);
    constexpr int kChunksPerRow = kCols / kChunk;
    constexpr int kChunks = kRows * kChunksPerRow;
    static_assert(kChunks % kThreads == 0, "tile must split evenly over the block");
#pragma unroll
    for (int i = 0; i < kChunks / kThreads; i++) {
        const int chunk = tid + i * kThreads;
        const int r = chunk / kChunksPerRow, c = (chunk % kChunksPerRow) * kChunk;
        const int64_t grow = row0 + r;
        const bool valid = grow < n_rows && col0 + c < n_cols;
        // Clamp the address of invalid chunks to the matrix start: never read.
        const T* src = valid ? gmem + grow * ld + col0 + c : gmem;
        cp_async_16(smem + r * kLdSmem + c, src, valid);
    }
}

} // namespace kernels
} // namespace faiss_flash

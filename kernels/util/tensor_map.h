// Host side of the TMA (sm_90a): 2D tensor maps over rows of 16-bit
// elements, the boxes the kernels' cp.async.bulk.tensor loads fetch.

#pragma once

#include <cstdint>

#include <cuda.h>

namespace faiss_flash {
namespace kernels {

/** Map over `rows` rows of `cols` 16-bit elements, rows `ld` elements
 * apart (ld·2 a multiple of 16, base 16-byte aligned): boxes of 64
 * columns (128 bytes) × box_rows rows, written to shared memory in the
 * 128-byte swizzled layout of wgmma's K-major operands (8-row atoms of
 * 1024 bytes); columns ≥ cols and rows ≥ rows are zero-filled. `what`
 * names the kernel family in the error message.
 */
CUtensorMap make_swizzled_row_map(
        const void* base,
        CUtensorMapDataType type,
        int64_t rows,
        int64_t ld,
        int64_t cols,
        int box_rows,
        const char* what);

} // namespace kernels
} // namespace faiss_flash

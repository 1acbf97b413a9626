// Warp-level tensor-core pieces (mma.sync, sm_80+): one "recipe" per
// operand arithmetic. A recipe says how a warp loads its A (points) and B
// (centroids) fragments of one K-step from shared memory and multiplies
// them into fp32 accumulators. The block-level mainloop is written once
// against this interface.
//
// Shared-memory tiles are row-major with K contiguous: A[m][k] (points) and
// B[n][k] (centroids) -- B is exactly the "col" operand of mma.row.col.

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <type_traits>

namespace faiss_flash {
namespace kernels {

/// ldmatrix.x4: four 8x8 b16 matrices, one row address per lane.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/// ldmatrix.x4.trans: the same four matrices, each transposed as it is
/// loaded -- from row-major [k][n] rows, the "col" B operand of mma.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/// 16-bit operands (fp16 or bf16), m16n8k16, fp32 accumulation: exact
/// products of the 16-bit values.
template <typename Half>
struct RecipeHalf {
    using Element = Half;
    static constexpr int kStepK = 16;
    static constexpr bool kFragmentRegsHeavy = false;

    struct FragA {
        uint32_t r[4];
    };
    struct FragB {
        uint32_t r[2];
    };

    /// A fragment of a 16-row slab starting at `tile` (row stride ld elems).
    __device__ __forceinline__ static void load_a(FragA& a, const Half* tile, int ld, int lane) {
        const int row = lane % 16, col = (lane / 16) * 8;
        ldmatrix_x4(a.r, tile + row * ld + col);
    }

    /// Two B fragments (n 0-7 and 8-15 of a 16-row slab of centroids).
    __device__ __forceinline__ static void load_b2(FragB& b0, FragB& b1, const Half* tile, int ld, int lane) {
        const int row = (lane % 8) + (lane / 16) * 8, col = ((lane / 8) % 2) * 8;
        uint32_t r[4];
        ldmatrix_x4(r, tile + row * ld + col);
        b0.r[0] = r[0];
        b0.r[1] = r[1];
        b1.r[0] = r[2];
        b1.r[1] = r[3];
    }

    __device__ __forceinline__ static void mma(float (&c)[4], const FragA& a, const FragB& b) {
        if constexpr (std::is_same_v<Half, __half>) {
            asm volatile(
                    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                    "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                    : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
        } else {
            asm volatile(
                    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                    "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                    : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
        }
    }
};

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
            "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/** fp32 operands, m16n8k8 tf32. kSplit = false: plain tf32 (10-bit
 * mantissas, ~1e-3 relative error). kSplit = true: 3xTF32 -- each operand
 * is split into hi = tf32(v) and lo = tf32(v - hi), and a*b is computed as
 * hi*hi + hi*lo + lo*hi: the dropped lo*lo term and the tf32 rounding of lo
 * leave a relative error near 2^-21 per product, the accuracy of fp32
 * arithmetic on these dot products (see README, accuracy contract).
 */
template <bool kSplit>
struct RecipeTf32 {
    using Element = float;
    static constexpr int kStepK = 8;
    static constexpr bool kFragmentRegsHeavy = kSplit;

    struct FragA {
        uint32_t hi[4];
        uint32_t lo[kSplit ? 4 : 1];
    };
    struct FragB {
        uint32_t hi[2];
        uint32_t lo[kSplit ? 2 : 1];
    };

    template <int N>
    __device__ __forceinline__ static void split(const float (&v)[N], uint32_t (&hi)[N], uint32_t* lo) {
#pragma unroll
        for (int i = 0; i < N; i++) {
            hi[i] = to_tf32(v[i]);
            if constexpr (kSplit) {
                lo[i] = to_tf32(v[i] - __uint_as_float(hi[i]));
            }
        }
    }

    __device__ __forceinline__ static void load_a(FragA& a, const float* tile, int ld, int lane) {
        const int g = lane / 4, t = lane % 4;
        const float v[4] = {tile[g * ld + t], tile[(g + 8) * ld + t], tile[g * ld + t + 4], tile[(g + 8) * ld + t + 4]};
        split(v, a.hi, a.lo);
    }

    __device__ __forceinline__ static void load_b2(FragB& b0, FragB& b1, const float* tile, int ld, int lane) {
        const int g = lane / 4, t = lane % 4;
        const float v0[2] = {tile[g * ld + t], tile[g * ld + t + 4]};
        const float v1[2] = {tile[(g + 8) * ld + t], tile[(g + 8) * ld + t + 4]};
        split(v0, b0.hi, b0.lo);
        split(v1, b1.hi, b1.lo);
    }

    __device__ __forceinline__ static void mma(float (&c)[4], const FragA& a, const FragB& b) {
        if constexpr (kSplit) {
            // Small terms first so they are not absorbed by the large one.
            mma_tf32(c, a.lo, b.hi);
            mma_tf32(c, a.hi, b.lo);
        }
        mma_tf32(c, a.hi, b.hi);
    }
};

} // namespace kernels
} // namespace faiss_flash

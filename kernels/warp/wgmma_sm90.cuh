// Warpgroup-level tensor-core pieces for Hopper (sm_90a): wgmma with both
// operands in shared memory, described by 64-bit matrix descriptors. Tiles
// are K-major with 128-byte rows in the 128B-swizzled layout that the TMA
// writes (8-row atoms of 1024 bytes).

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <type_traits>

namespace faiss_flash {
namespace kernels {

/// Descriptor of a K-major, 128B-swizzled tile starting at smem_tile (1024-
/// byte aligned): stride between 8-row atoms 1024 bytes. The start address
/// sits in the low bits as (address >> 4), so the descriptor of a tile at
/// byte offset o past smem_tile is this one + (o >> 4) (shared memory < 256
/// KiB never carries out of the field).
__device__ __forceinline__ uint64_t wgmma_descriptor(const void* smem_tile) {
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_tile));
    uint64_t desc = (addr & 0x3FFFF) >> 4;
    desc |= uint64_t(1) << 16;           // leading byte offset (unused when swizzled)
    desc |= uint64_t(1024 >> 4) << 32;   // stride byte offset: one 8-row atom
    desc |= uint64_t(1) << 62;           // 128-byte swizzle
    return desc;
}

/// Descriptor of an MN-major (N contiguous), 128B-swizzled tile at
/// smem_tile (1024-byte aligned): 128-byte rows of 64 elements along N, one
/// row per K; the next 64 N elements `half_stride` bytes on (leading byte
/// offset), the next 8 K rows 1024 bytes on (stride byte offset). The
/// descriptor of the k16 slice kk is that of the tile kk·2048 bytes on.
__device__ __forceinline__ uint64_t wgmma_descriptor_mn(const void* smem_tile, int half_stride) {
    const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_tile));
    uint64_t desc = (addr & 0x3FFFF) >> 4;
    desc |= uint64_t((half_stride >> 4) & 0x3FFF) << 16;
    desc |= uint64_t(1024 >> 4) << 32;
    desc |= uint64_t(1) << 62;
    return desc;
}

/// Orders this thread's generic-proxy shared-memory writes (plain stores,
/// cp.async) before later wgmma reads of them (async proxy); sm_90a only.
__device__ __forceinline__ void fence_async_shared() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/// The descriptor of the k16 slice kk of a 64-wide (128-byte) K chunk:
/// inside a swizzle atom, slices are 32 bytes apart.
__device__ __forceinline__ uint64_t wgmma_descriptor_k(uint64_t desc, int kk) {
    return desc + uint64_t((kk * 32) >> 4);
}

/// Moves registers between warpgroups of a CTA launched with a register cap
/// (__launch_bounds__(threads, 1)): the producer gives up what the
/// accumulators of the consumers need.
template <int kRegs>
__device__ __forceinline__ void warpgroup_reg_alloc() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}
template <int kRegs>
__device__ __forceinline__ void warpgroup_reg_dealloc() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#endif
}

__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
/// Waits until at most kPending of this warpgroup's committed groups are
/// still running (0: all done), so accumulators of older groups can be read
/// while the newest ones keep the tensor cores busy.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

/// The asm of one wgmma shape: its element type (f16 or bf16) is the only
/// difference between a function's instances and must be part of the
/// string literal, hence one macro per shape, expanded for each type.
#define FAISS_FLASH_WGMMA_M64N256K16(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate))
#define FAISS_FLASH_WGMMA_M64N32K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n32k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, %19, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))
#define FAISS_FLASH_WGMMA_M64N40K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %22, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n40k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19}, %20, %21, p, 1, 1, %23, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))
#define FAISS_FLASH_WGMMA_M64N64K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, %35, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))
#define FAISS_FLASH_WGMMA_M64N96K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n96k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47}, %48, %49, p, 1, 1, %51, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))
#define FAISS_FLASH_WGMMA_M64N104K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %54, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n104k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51}, %52, %53, p, 1, 1, %55, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))
#define FAISS_FLASH_WGMMA_M64N128K16_T(TYPE) \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " \
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, %67, 0;\n}\n" \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate), "n"(int(kTransA)))

/** d (64 x N fp32 per warpgroup, N/2 registers per thread) += A (64 x 16)
 * * B (16 x N); accumulate = 0 overwrites d instead. Accumulator register
 * 4j + 2h + e of a thread holds row 16*warp + lane/4 + 8h, column
 * 8j + 2*(lane%4) + e: the mma.sync C layout, per 8-column block.
 */
template <typename Half>
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if constexpr (std::is_same_v<Half, __half>) {
        FAISS_FLASH_WGMMA_M64N256K16("f16");
    } else {
        FAISS_FLASH_WGMMA_M64N256K16("bf16");
    }
#else
    __trap(); // only the sm_90a build runs this path
#endif
}

/** d (64 x kN fp32, kN/2 registers per thread) += A (64 x 16, K-major) *
 * B (16 x kN, K-major); kTransA: A M-major instead (its 64 elements
 * contiguous per K column). kN in {32, 40, 64, 96, 104, 128}; accumulate =
 * 0 overwrites.
 */
template <typename Half, int kN, bool kTransA = false>
__device__ __forceinline__ void wgmma_m64k16(float (&d)[kN / 2], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    static_assert(kN == 32 || kN == 40 || kN == 64 || kN == 96 || kN == 104 || kN == 128,
                  "N = 32, 40, 64, 96, 104 or 128");
    constexpr bool kF16 = std::is_same_v<Half, __half>;
    if constexpr (kN == 32) {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N32K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N32K16_T("bf16");
        }
    } else if constexpr (kN == 40) {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N40K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N40K16_T("bf16");
        }
    } else if constexpr (kN == 64) {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N64K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N64K16_T("bf16");
        }
    } else if constexpr (kN == 96) {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N96K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N96K16_T("bf16");
        }
    } else if constexpr (kN == 104) {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N104K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N104K16_T("bf16");
        }
    } else {
        if constexpr (kF16) {
            FAISS_FLASH_WGMMA_M64N128K16_T("f16");
        } else {
            FAISS_FLASH_WGMMA_M64N128K16_T("bf16");
        }
    }
#else
    __trap(); // only the sm_90a build runs this path
#endif
}

#undef FAISS_FLASH_WGMMA_M64N256K16
#undef FAISS_FLASH_WGMMA_M64N32K16_T
#undef FAISS_FLASH_WGMMA_M64N40K16_T
#undef FAISS_FLASH_WGMMA_M64N64K16_T
#undef FAISS_FLASH_WGMMA_M64N96K16_T
#undef FAISS_FLASH_WGMMA_M64N104K16_T
#undef FAISS_FLASH_WGMMA_M64N128K16_T

} // namespace kernels
} // namespace faiss_flash

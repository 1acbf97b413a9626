// Reading one coordinate of the caller's points, whatever their storage
// type, as fp32 (the update and the operand preparation read the caller's
// own values).

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "../update/sort_inverse_update.cuh"

namespace faiss_flash {
namespace kernels {

__device__ __forceinline__ float load_point(const void* x, PointType t, int64_t i) {
    switch (t) {
        case PointType::F16:
            return __half2float(static_cast<const __half*>(x)[i]);
        case PointType::BF16:
            return __bfloat162float(static_cast<const __nv_bfloat16*>(x)[i]);
        default:
            return static_cast<const float*>(x)[i];
    }
}

} // namespace kernels
} // namespace faiss_flash

// Reading the caller's points, whatever their storage type, as fp32 (the
// update and the operand preparation read the caller's own values): one
// coordinate by runtime type, or a run of coordinates by static type in one
// memory access.

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <cstring>

#include "../update/update_centroids.cuh"

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

__device__ __forceinline__ float point_to_float(float v) {
    return v;
}
__device__ __forceinline__ float point_to_float(__half v) {
    return __half2float(v);
}
__device__ __forceinline__ float point_to_float(__nv_bfloat16 v) {
    return __bfloat162float(v);
}

/// The unsigned type __ldg loads kBytes with in one access.
template <int kBytes>
struct PointBits;
template <>
struct PointBits<2> {
    using type = unsigned short;
};
template <>
struct PointBits<4> {
    using type = unsigned int;
};
template <>
struct PointBits<8> {
    using type = uint2;
};
template <>
struct PointBits<16> {
    using type = uint4;
};

/// kCount contiguous coordinates of type T, held as loaded so that several
/// rows' accesses can be in flight before any is converted.
template <typename T, int kCount>
struct PointVector {
    using Bits = typename PointBits<int(sizeof(T)) * kCount>::type;
    Bits bits;

    /// p must be aligned to sizeof(Bits).
    __device__ __forceinline__ void load(const T* p) {
        bits = __ldg(reinterpret_cast<const Bits*>(p));
    }

    /// From a copy in shared memory (__ldg reads global memory only); p
    /// aligned likewise.
    __device__ __forceinline__ void load_shared(const T* p) {
        bits = *reinterpret_cast<const Bits*>(p);
    }

    __device__ __forceinline__ void to_float(float (&out)[kCount]) const {
        T values[kCount];
        memcpy(values, &bits, sizeof(bits));
#pragma unroll
        for (int i = 0; i < kCount; i++) {
            out[i] = point_to_float(values[i]);
        }
    }
};

} // namespace kernels
} // namespace faiss_flash

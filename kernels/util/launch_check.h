// The launch check every kernel family's launch helper runs after a launch.

#pragma once

#include <cuda_runtime_api.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

/// Throws faiss::FaissException naming the kernel if the launch failed.
inline void check_launch(const char* what) {
    const cudaError_t err = cudaGetLastError();
    FAISS_THROW_IF_NOT_FMT(err == cudaSuccess, "%s launch failed: %s", what, cudaGetErrorString(err));
}

} // namespace kernels
} // namespace faiss_flash

#include <faiss_flash/engine/backend_factory.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_flash/cpu/CpuBackend.h>
#ifdef FAISS_FLASH_WITH_CUDA
#include <faiss_flash/gpu/CudaBackend.h>
#endif

namespace faiss_flash {

bool cuda_backend_available() {
#ifdef FAISS_FLASH_WITH_CUDA
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); // no driver / no device: not an error here
        return false;
    }
    return count > 0;
#else
    return false;
#endif
}

std::unique_ptr<LloydBackend> make_backend(const FlashParameters& params) {
    const bool want_cuda = params.backend == BackendKind::CUDA ||
            (params.backend == BackendKind::Auto && cuda_backend_available());
    if (want_cuda) {
#ifdef FAISS_FLASH_WITH_CUDA
        FAISS_THROW_IF_NOT_MSG(
                cuda_backend_available(),
                "faiss_flash: backend CUDA requested, but no GPU is visible");
        return std::make_unique<gpu::CudaBackend>(params);
#else
        FAISS_THROW_MSG(
                "faiss_flash: backend CUDA requested, but this build of "
                "faiss_flash has no CUDA backend (FAISS_FLASH_ENABLE_GPU=OFF)");
#endif
    }
    return std::make_unique<cpu::CpuBackend>(params.num_threads);
}

} // namespace faiss_flash

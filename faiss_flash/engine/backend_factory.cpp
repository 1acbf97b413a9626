#include <faiss_flash/engine/backend_factory.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_flash/cpu/CpuBackend.h>

namespace faiss_flash {

bool cuda_backend_available() {
    // Becomes true in builds with FAISS_FLASH_WITH_CUDA once a GPU is seen.
    return false;
}

std::unique_ptr<LloydBackend> make_backend(const FlashParameters& params) {
    if (params.backend == BackendKind::CUDA) {
        FAISS_THROW_MSG(
                "faiss_flash: backend CUDA requested, but this build of "
                "faiss_flash has no CUDA backend or no GPU is visible");
    }
    return std::make_unique<cpu::CpuBackend>(params.num_threads);
}

} // namespace faiss_flash

// Picks and builds the backend named by FlashParameters.

#pragma once

#include <memory>

#include <faiss_flash/FlashParameters.h>
#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {

/// True when the library has the CUDA backend and a GPU is visible.
bool cuda_backend_available();

/// Auto resolves to CUDA when cuda_backend_available(), else CPU. Asking for
/// CUDA where it is not available throws a faiss::FaissException saying why.
std::unique_ptr<LloydBackend> make_backend(const FlashParameters& params);

} // namespace faiss_flash

// CUDA runtime errors as faiss::FaissException, and device memory owned by
// RAII buffers whose allocation failure names the size and the purpose.

#pragma once

#include <cstddef>
#include <utility>

#include <cuda_runtime_api.h>

#include <faiss/impl/FaissAssert.h>

#define FAISS_FLASH_CUDA_CHECK(call)                                        \
    do {                                                                    \
        const cudaError_t faiss_flash_err_ = (call);                        \
        FAISS_THROW_IF_NOT_FMT(                                             \
                faiss_flash_err_ == cudaSuccess,                            \
                "CUDA error %s in %s",                                      \
                cudaGetErrorString(faiss_flash_err_),                       \
                #call);                                                     \
    } while (false)

namespace faiss_flash {
namespace gpu {

class DeviceBuffer {
   public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept
            : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    ~DeviceBuffer() {
        release();
    }

    /// (Re)allocates `bytes` (contents undefined); throws on failure with
    /// the size and `what` in the message.
    void allocate(size_t bytes, const char* what) {
        if (bytes == bytes_) {
            return;
        }
        release();
        if (bytes == 0) {
            return;
        }
        const cudaError_t err = cudaMalloc(&ptr_, bytes);
        if (err != cudaSuccess) {
            ptr_ = nullptr;
            cudaGetLastError(); // clear the sticky-free allocation error
            FAISS_THROW_FMT(
                    "faiss_flash: cannot allocate %zd bytes of GPU memory for %s: %s",
                    bytes,
                    what,
                    cudaGetErrorString(err));
        }
        bytes_ = bytes;
    }

    template <typename T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    size_t bytes() const {
        return bytes_;
    }

   private:
    void release() {
        if (ptr_) {
            cudaFree(ptr_);
        }
        ptr_ = nullptr;
        bytes_ = 0;
    }
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

/// Makes `device` current for a scope, restoring the previous one.
class DeviceScope {
   public:
    explicit DeviceScope(int device) {
        FAISS_FLASH_CUDA_CHECK(cudaGetDevice(&previous_));
        if (device != previous_) {
            FAISS_FLASH_CUDA_CHECK(cudaSetDevice(device));
        }
    }
    ~DeviceScope() {
        cudaSetDevice(previous_);
    }

   private:
    int previous_ = 0;
};

} // namespace gpu
} // namespace faiss_flash

// CUDA runtime errors as faiss::FaissException, and device or page-locked
// host memory owned by RAII buffers whose allocation failure names the size
// and the purpose.

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

/// Where a Buffer's bytes live: GPU memory.
struct DeviceMemory {
    static constexpr const char* kName = "GPU memory";
    static cudaError_t allocate(void** p, size_t bytes) {
        return cudaMalloc(p, bytes);
    }
    static void release(void* p) {
        cudaFree(p);
    }
};

/// Page-locked host memory: a device-to-host copy into it is one DMA,
/// without the driver's staging copy of pageable memory.
struct PinnedHostMemory {
    static constexpr const char* kName = "page-locked host memory";
    static cudaError_t allocate(void** p, size_t bytes) {
        return cudaMallocHost(p, bytes);
    }
    static void release(void* p) {
        cudaFreeHost(p);
    }
};

/// Memory owned by RAII; Memory is DeviceMemory or PinnedHostMemory.
template <typename Memory>
class Buffer {
   public:
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    ~Buffer() {
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
        const cudaError_t err = Memory::allocate(&ptr_, bytes);
        if (err != cudaSuccess) {
            ptr_ = nullptr;
            cudaGetLastError(); // clear the sticky-free allocation error
            FAISS_THROW_FMT(
                    "faiss_flash: cannot allocate %zd bytes of %s for %s: %s",
                    bytes,
                    Memory::kName,
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
            Memory::release(ptr_);
        }
        ptr_ = nullptr;
        bytes_ = 0;
    }
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

using DeviceBuffer = Buffer<DeviceMemory>;
using PinnedBuffer = Buffer<PinnedHostMemory>;

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

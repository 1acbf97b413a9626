// Readers for the idx format of (Fashion-)MNIST, plain or gzip'd.

#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace faiss_flash {

/// Images of an idx3-ubyte file as float vectors (one row per image,
/// pixel values 0..255 as floats).
struct IdxImages {
    int64_t n = 0;
    int64_t d = 0;
    std::vector<float> data; ///< n×d, row-major
};

/// Throws faiss::FaissException naming the file and the problem (missing,
/// wrong magic, truncated).
IdxImages read_idx_images(const std::string& path);

/// Labels of an idx1-ubyte file.
std::vector<int> read_idx_labels(const std::string& path);

/// The directory of the Fashion-MNIST idx files: $FAISS_FLASH_DATA_DIR when
/// set (a machine without the Debian package), else Debian's
/// dataset-fashion-mnist location.
inline const char* fashion_mnist_dir() {
    const char* env = std::getenv("FAISS_FLASH_DATA_DIR");
    return env ? env : "/usr/share/datasets/fashion-mnist";
}

} // namespace faiss_flash

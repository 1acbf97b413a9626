// Readers and writers of the vector file formats FAISS users exchange:
//
// - .fvecs / .bvecs (the ANN-benchmark formats of corpus-texmex): one record
//   per vector, a little-endian int32 dimension d followed by d float32
//   (.fvecs) or d uint8 (.bvecs) components;
// - .npy (numpy's format, version 1.0 to 3.0): a C-ordered 2-D array of
//   float32, or float64 / uint8 converted to float32; labels as 1-D int64;
// - idx3-ubyte images of (Fashion-)MNIST, plain or gzip'd (idx_format.h).
//
// Every reader returns finite float32 vectors or throws a
// faiss::FaissException whose message names the file and the problem:
// missing, wrong magic, unsupported dtype / shape / order, truncated,
// dimension changing between records, NaN or Inf (with its row and column).
// Writers throw when the file cannot be written completely.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace faiss_flash {

/// n vectors of dimension d, row-major.
struct FloatMatrix {
    int64_t n = 0;
    int64_t d = 0;
    std::vector<float> data; ///< n×d
};

/// Vectors of a .fvecs file.
FloatMatrix read_fvecs(const std::string& path);

/// Vectors of a .bvecs file, components 0..255 as floats.
FloatMatrix read_bvecs(const std::string& path);

/// A 2-D .npy array of dtype float32, float64 or uint8 (converted to
/// float32), C order.
FloatMatrix read_npy(const std::string& path);

/// A 1-D .npy array of dtype int64 (labels, as write_npy_labels writes them).
std::vector<int64_t> read_npy_labels(const std::string& path);

/// Picks the reader from the file name: *.fvecs, *.bvecs, *.npy, and
/// *idx3-ubyte or *idx3-ubyte.gz (idx images). Other names throw, listing
/// the supported ones.
FloatMatrix read_vectors(const std::string& path);

/// Writes x (n×d) as .fvecs.
void write_fvecs(const std::string& path, int64_t n, int64_t d, const float* x);

/// Writes x (n×d) as a 2-D float32 .npy array (version 1.0, C order).
void write_npy(const std::string& path, int64_t n, int64_t d, const float* x);

/// Writes labels (n) as a 1-D int64 .npy array.
void write_npy_labels(const std::string& path, int64_t n, const int64_t* labels);

/// Picks the writer from the file name: *.fvecs or *.npy; other names throw.
void write_vectors(const std::string& path, int64_t n, int64_t d, const float* x);

/// Throws as write_vectors does for a file name it has no writer for, so
/// that callers can refuse a bad name before computing what to write.
void check_vector_output_name(const std::string& path);

} // namespace faiss_flash

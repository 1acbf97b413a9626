// numpy_api's train_serialized_index (declared in numpy_api.h): train_index
// on an index passed in FAISS's serialized form.

#include "numpy_api.h"

#include <memory>

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <faiss_flash/train_index.h>

namespace faiss_flash {
namespace python {

std::vector<uint8_t> train_serialized_index(
        const uint8_t* index_bytes,
        int64_t n_bytes,
        const FlashParameters& params,
        int64_t n,
        int64_t d,
        const float* x) {
    faiss::VectorIOReader reader;
    reader.data.assign(index_bytes, index_bytes + n_bytes);
    std::unique_ptr<faiss::Index> index(faiss::read_index(&reader));
    FAISS_THROW_IF_NOT_FMT(
            index->d == d,
            "training vectors have dimension %ld, the index %ld",
            long(d),
            long(index->d));
    train_index(index.get(), n, x, params);
    faiss::VectorIOWriter writer;
    faiss::write_index(index.get(), &writer);
    return std::move(writer.data);
}

} // namespace python
} // namespace faiss_flash

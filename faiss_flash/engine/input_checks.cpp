#include <faiss_flash/engine/input_checks.h>

#include <cinttypes>
#include <cmath>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {

void check_finite(const float* x, size_t count) {
    FAISS_THROW_IF_NOT_MSG(x, "input vectors are a null pointer");
    for (size_t i = 0; i < count; i++) {
        FAISS_THROW_IF_NOT_MSG(
                std::isfinite(x[i]), "input contains NaN's or Inf's");
    }
}

void check_problem_size(int64_t n, int64_t d, int64_t k) {
    FAISS_THROW_IF_NOT_FMT(d > 0, "dimension d=%" PRId64 " must be > 0", d);
    FAISS_THROW_IF_NOT_FMT(
            k > 0, "number of clusters k=%" PRId64 " must be > 0", k);
    FAISS_THROW_IF_NOT_FMT(
            n >= k,
            "Number of training points (%" PRId64
            ") should be at least "
            "as large as number of clusters (%" PRId64 ")",
            n,
            k);
}

} // namespace faiss_flash

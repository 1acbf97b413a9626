// Argument checks shared by the public entry points, with FAISS's messages
// where FAISS has one.

#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_flash {

/// Throws FAISS's "input contains NaN's or Inf's" if any value is not finite.
void check_finite(const float* x, size_t count);

/// Throws FAISS's "Number of training points (n) should be at least as large
/// as number of clusters (k)" if n < k, and names d or k if not positive.
void check_problem_size(int64_t n, int64_t d, int64_t k);

} // namespace faiss_flash

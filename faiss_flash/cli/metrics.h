// Quality measures of the demo: clustering against class labels, and
// approximate search against exact search.

#pragma once

#include <cstdint>
#include <vector>

namespace faiss_flash {
namespace cli {

/** Normalized mutual information of two labelings of the same points:
 * NMI = I(A; B) / ((H(A) + H(B)) / 2), natural logarithms (the arithmetic
 * normalisation, scikit-learn's default). 1 for identical partitions
 * (whatever the label values), 0 for independent ones; 1 when both
 * labelings are constant. Labels may be any int64 values.
 * Throws if the sizes differ or are 0.
 */
double normalized_mutual_information(
        const std::vector<int64_t>& a,
        const std::vector<int64_t>& b);

/** k-recall@k: the mean over nq queries of |found ∩ truth| / k, where
 * found and truth hold k ids per query (nq×k, row-major). Ids -1 (no
 * result) never match.
 */
double recall_at_k(
        int64_t nq,
        int64_t k,
        const int64_t* found,
        const int64_t* truth);

} // namespace cli
} // namespace faiss_flash

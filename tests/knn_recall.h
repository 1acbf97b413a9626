// k-NN ground truth and recall, for the tests and the benchmark programs
// that judge a trained index by its search results.

#pragma once

#include <cstdint>
#include <vector>

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>

#include <faiss_flash/cli/metrics.h>

namespace faiss_flash {
namespace testing {

using idx_t = faiss::Index::idx_t;

/// The exact k nearest database vectors of each query (nq × k ids),
/// by IndexFlat with the given metric.
inline std::vector<idx_t> exact_knn(
        const float* xb,
        int64_t nb,
        const float* xq,
        int64_t nq,
        int d,
        int k,
        faiss::MetricType metric = faiss::METRIC_L2) {
    faiss::IndexFlat flat(d, metric);
    flat.add(nb, xb);
    std::vector<float> distances(nq * k);
    std::vector<idx_t> labels(nq * k);
    flat.search(nq, xq, k, distances.data(), labels.data());
    return labels;
}

/// k-recall@k: the mean fraction of the exact k neighbours (ground_truth,
/// nq × k) among the k results of index.search.
inline double recall_at_k(
        const faiss::Index& index,
        const float* xq,
        int64_t nq,
        const std::vector<idx_t>& ground_truth,
        int k) {
    std::vector<float> distances(nq * k);
    std::vector<idx_t> labels(nq * k);
    index.search(nq, xq, k, distances.data(), labels.data());
    return cli::recall_at_k(nq, k, labels.data(), ground_truth.data());
}

/// Sets nprobe of the IVF index inside `index` (through pre-transforms,
/// id maps, refines); nothing for indexes without one.
inline void set_nprobe(faiss::Index* index, int nprobe) {
    if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index)) {
        ivf->nprobe = nprobe;
    }
}

} // namespace testing
} // namespace faiss_flash

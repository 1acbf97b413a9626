// A faiss::IndexFlat whose search runs faiss_flash's fused assignment: the
// hook that makes FAISS's own k-means (and anything else that searches a
// flat index) use our kernels, through FAISS's documented hooks
// `IndexIVF::clustering_index` and `ProductQuantizer::assign_index`.

#pragma once

#include <faiss/IndexFlat.h>

#include <faiss_flash/FlashParameters.h>

namespace faiss_flash {

struct IndexFlatFlash : faiss::IndexFlat {
    /// Backend and precision of the fused search (CUDA when available).
    FlashParameters flash;

    explicit IndexFlatFlash(
            idx_t d,
            faiss::MetricType metric = faiss::METRIC_L2,
            const FlashParameters& params = FlashParameters());

    IndexFlatFlash();

    /** k == 1: fused nearest-centroid search on the chosen backend (ties to
     * the lowest id, as IndexFlat). k > 1: exact k-NN (IndexFlat's search).
     */
    void search(
            idx_t n,
            const float* x,
            idx_t k,
            float* distances,
            idx_t* labels,
            const faiss::SearchParameters* params = nullptr) const override;
};

} // namespace faiss_flash

// A faiss::IndexFlat whose search runs faiss_flash's fused assignment: the
// hook that makes FAISS's own k-means (and anything else that searches a
// flat index) use our kernels, through FAISS's documented hooks
// `IndexIVF::clustering_index` and `ProductQuantizer::assign_index`.

#pragma once

#include <faiss/IndexFlat.h>

#include <faiss_flash/FlashParameters.h>

namespace faiss_flash {

/** IndexFlat with a fused nearest-neighbour (k == 1) search.
 *
 * Storage, add, reset, reconstruct, serialisation layout and k > 1 search
 * are IndexFlat's. Typical use, FAISS's own IVF training with our
 * assignment step:
 *
 *     faiss_flash::IndexFlatFlash assigner(d);
 *     ivf.clustering_index = &assigner;
 *     ivf.train(n, x);
 *
 * or `pq.assign_index = &assigner_of_dimension_dsub` for the PQ codebooks.
 */
struct IndexFlatFlash : faiss::IndexFlat {
    /// Backend and precision of the fused search (CUDA when available).
    FlashParameters flash;

    explicit IndexFlatFlash(
            idx_t d,
            faiss::MetricType metric = faiss::METRIC_L2,
            const FlashParameters& params = FlashParameters());

    IndexFlatFlash();

    /** k == 1: fused nearest-vector search on a backend from
     * make_backend(flash): ties to the lowest id, as IndexFlat; distances
     * as IndexFlat reports them (L2: squared distance, inner product: the
     * product), equal to IndexFlat's within fp32 rounding.
     *
     * ntotal == 0 (L2 or inner product, any k): every result is FAISS's
     * "no result", label -1 and distance FLT_MAX (L2) / -FLT_MAX (inner
     * product), as IndexFlat gives for missing neighbours. (IndexFlat 1.7.3
     * itself returns label 0 for k == 1 on an empty index, and leaves the
     * output untouched from 20 queries on.)
     *
     * IndexFlat::search answers, with IndexFlat's results, when k != 1,
     * n == 0, the metric is neither L2 nor inner product, params carries
     * an IDSelector, or a query or a stored vector is NaN or infinite (such
     * queries get IndexFlat's answer, not whatever the kernel's comparisons
     * would give).
     *
     * A backend is made per call: search is thread-safe, as IndexFlat's.
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

// Train whole FAISS indexes with faiss_flash's k-means, and re-train IVF
// indexes as their data drifts.

#pragma once

#include <cstdint>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>

#include <faiss_flash/FlashParameters.h>

namespace faiss_flash {

/** Trains `index` on n vectors x, running every k-means it needs in
 * faiss_flash's engine: the coarse quantizer of IndexIVF subclasses (with
 * the index's `cp` settings; inner-product metric => spherical, as FAISS),
 * the PQ codebooks (the M sub-quantizers as one batched problem), through
 * IndexPreTransform chains (transforms are trained by FAISS first) and
 * index_factory products. What is not k-means (scalar quantizer ranges,
 * OPQ rotations, ...) is trained by FAISS itself.
 */
void train_index(
        faiss::Index* index,
        int64_t n,
        const float* x,
        const FlashParameters& params = FlashParameters());

/// What retrain_ivf did.
struct RetrainReport {
    int64_t n_moved = 0;       ///< stored vectors whose list changed
    int64_t n_total = 0;       ///< stored vectors
    double train_seconds = 0;  ///< k-means on the new sample
    double reassign_seconds = 0; ///< moving the stored vectors
};

/** Re-trains the coarse quantizer of a trained IVF index on a new sample
 * x_new, warm-started from its current centroids, then moves every stored
 * vector to its new list (ids kept).
 *
 * IVFFlat: exact, the stored vectors are the originals. Compressed codes
 * (IVFPQ, IVFSQ, ...): vectors are reconstructed from their codes and
 * re-encoded against the new centroids, unless `originals` (ntotal × d,
 * in id order 0..ntotal-1 as added) is given, which is then used instead.
 */
RetrainReport retrain_ivf(
        faiss::IndexIVF* ivf,
        int64_t n,
        const float* x_new,
        const FlashParameters& params = FlashParameters(),
        const float* originals = nullptr);

} // namespace faiss_flash

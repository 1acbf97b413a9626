// Train whole FAISS indexes with faiss_flash's k-means, and re-train IVF
// indexes as their data drifts.

#pragma once

#include <cstdint>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>

#include <faiss_flash/FlashParameters.h>

namespace faiss_flash {

/** Trains `index` on n vectors x, running every k-means it needs in
 * faiss_flash's engine, with FAISS 1.7.3's semantics:
 *
 * - IndexIVF subclasses: the coarse quantizer as Level1Quantizer::train_q1
 *   does, with FlashClustering and the index's `cp` (niter 10; inner
 *   product => cp.spherical, set by IndexIVF's constructor), for
 *   quantizer_trains_alone 0 and 2 (1: the quantizer is trained by
 *   train_index itself). A quantizer already trained with nlist entries is
 *   kept, as FAISS keeps it. clustering_index, when set, receives the
 *   centroids and its metric picks the assignment, as in FAISS.
 * - IndexIVFPQ, IndexIVFPQFastScan and IndexPQ (these exact types): the PQ
 *   codebooks, the M sub-quantizers as one batch_kmeans problem, on FAISS's
 *   training sample (pq.cp subsampling, residuals to the coarse centroids
 *   when by_residual); polysemous reordering and precomputed tables by
 *   FAISS afterwards, as their train does.
 * - IndexPreTransform: the untrained transforms by FAISS in chain order,
 *   each on the output of the previous ones, then the sub-index by
 *   train_index. IndexIDMap(2) and IndexRefine: their sub-indexes.
 * - Everything else that is not k-means (IVF scalar quantizer ranges, OPQ
 *   rotations, other index types) is trained by FAISS's own train().
 *
 * Throws faiss::FaissException for a null index, n <= 0, non-finite input
 * and fewer training vectors than centroids (FAISS's message).
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
 * x_new (n × d, n >= nlist), warm-started from its current centroids, then
 * moves every stored vector to its new list.
 *
 * The k-means is FlashClustering with ivf->cp (niter, subsampling above
 * nlist · max_points_per_centroid, spherical) starting from the centroids
 * read back from ivf->quantizer, which is then reset and refilled; the
 * quantizer must be able to reconstruct them (IndexFlat, IndexHNSWFlat, ...)
 * and must not be one that trains alone (quantizer_trains_alone == 1).
 *
 * Stored vectors: the index is emptied (reset) and every vector re-added
 * with its id, in its new list, in id order. ntotal and the ids are kept;
 * the direct-map type is kept (an Array map is rebuilt, its ids being
 * 0..ntotal-1).
 * - IndexIVFFlat: exact, the stored codes are the original floats.
 * - Compressed codes (IVFPQ, IVFSQ, IVFPQFastScan, ...): each vector is
 *   reconstructed from its code with the old coarse centroid
 *   (reconstruct_from_offset: centroid + decoded residual when by_residual),
 *   then re-encoded against its new centroid: the error of the old code is
 *   kept and the new encoding adds its own (for IVFPQ, recall can end below
 *   that of the stale index: pass the originals when available). With
 *   `originals` (ntotal × d,
 *   row i = the vector of id i; the ids must be 0..ntotal-1) those rows are
 *   encoded instead, as a fresh add would.
 * - The second-level codec (PQ codebooks, SQ ranges) is NOT re-trained: it
 *   was trained on the old residual distribution. IVFPQ / IVFPQFastScan
 *   precomputed tables are rebuilt for the new centroids.
 *
 * Throws faiss::FaissException for a null or untrained index, a quantizer
 * with the wrong dimension or size, n < nlist, non-finite input, ids
 * outside [0, ntotal) with originals.
 */
RetrainReport retrain_ivf(
        faiss::IndexIVF* ivf,
        int64_t n,
        const float* x_new,
        const FlashParameters& params = FlashParameters(),
        const float* originals = nullptr);

} // namespace faiss_flash

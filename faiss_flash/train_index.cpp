#include <faiss_flash/train_index.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <typeinfo>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/PolysemousTraining.h>
#include <faiss/utils/random.h>

#include <faiss_flash/BatchKMeans.h>
#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/IndexFlatFlash.h>
#include <faiss_flash/engine/input_checks.h>

namespace faiss_flash {

namespace {

using idx_t = faiss::Index::idx_t;

/// train_index without the argument checks, for the recursion.
void train_any(
        faiss::Index& index,
        int64_t n,
        const float* x,
        const FlashParameters& params);

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
}

FlashClusteringParameters flash_clustering_parameters(
        const faiss::ClusteringParameters& cp,
        const FlashParameters& params) {
    FlashClusteringParameters p;
    static_cast<faiss::ClusteringParameters&>(p) = cp;
    static_cast<FlashParameters&>(p) = params;
    return p;
}

/// FAISS's fvecs_maybe_subsample: at most n_max rows, the first n_max of
/// rand_perm(n, seed) (the draw faiss::Clustering's own subsampling makes).
/// Returns x itself, or the rows copied into `storage`.
const float* maybe_subsample(
        int64_t d,
        int64_t& n,
        int64_t n_max,
        const float* x,
        int64_t seed,
        std::vector<float>& storage) {
    if (n <= n_max) {
        return x;
    }
    std::vector<int> perm(n);
    faiss::rand_perm(perm.data(), n, seed);
    storage.resize(size_t(n_max) * d);
    for (int64_t i = 0; i < n_max; i++) {
        std::memcpy(storage.data() + i * d, x + int64_t(perm[i]) * d,
                    sizeof(float) * d);
    }
    n = n_max;
    return storage.data();
}

/// Coarse list of each of n vectors: the fused engine when the quantizer
/// is an exact flat index (same answer as its search), else its own assign.
std::vector<idx_t> assign_to_lists(
        const faiss::IndexIVF& ivf,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    std::vector<idx_t> lists(n);
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(ivf.quantizer);
    if (flat) {
        IndexFlatFlash engine(flat->d, flat->metric_type, params);
        engine.add(flat->ntotal, flat->get_xb());
        engine.assign(n, x, lists.data());
    } else {
        ivf.quantizer->assign(n, x, lists.data());
    }
    return lists;
}

/** ProductQuantizer::train (Train_default) with the M sub-quantizers as one
 * batched problem. FAISS runs M faiss::Clustering with the same pq.cp, so
 * every slice is subsampled with the same rand_perm(n, cp.seed) rows and
 * initialised with the same draw: one batch_kmeans over the M transposed
 * slices is the same computation. Other train types go to FAISS.
 */
void train_product_quantizer(
        faiss::ProductQuantizer& pq,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    if (pq.train_type != faiss::ProductQuantizer::Train_default) {
        pq.train(n, x);
        return;
    }
    const int64_t M = pq.M, dsub = pq.dsub, ksub = pq.ksub, d = pq.d;
    std::vector<float> sample;
    const float* xs = maybe_subsample(
            d, n, ksub * pq.cp.max_points_per_centroid, x, pq.cp.seed, sample);
    if (n < ksub * pq.cp.min_points_per_centroid) {
        fprintf(stderr,
                "WARNING clustering %" PRId64 " points to %" PRId64
                " centroids: please provide at least %" PRId64
                " training points\n",
                n, ksub, ksub * pq.cp.min_points_per_centroid);
    }
    // slices[m][i][j] = xs[i][m * dsub + j]
    std::vector<float> slices(size_t(n) * d);
    for (int64_t m = 0; m < M; m++) {
        for (int64_t i = 0; i < n; i++) {
            std::memcpy(slices.data() + (m * n + i) * dsub,
                        xs + i * d + m * dsub, sizeof(float) * dsub);
        }
    }
    FlashClusteringParameters fp = flash_clustering_parameters(pq.cp, params);
    fp.verbose = fp.verbose || pq.verbose;
    BatchKMeansResult r =
            batch_kmeans(slices.data(), M, n, dsub, ksub, fp, Metric::L2);
    pq.centroids = std::move(r.centroids); // M × ksub × dsub, FAISS's layout
    if (!pq.transposed_centroids.empty()) {
        pq.sync_transposed_centroids();
    }
}

/// The IndexIVFPQ / IndexIVFPQFastScan tables that depend on the coarse
/// centroids and the PQ, rebuilt when FAISS's train_residual builds them.
void refresh_precomputed_tables(faiss::IndexIVF& ivf) {
    if (typeid(ivf) == typeid(faiss::IndexIVFPQ)) {
        auto& ivfpq = static_cast<faiss::IndexIVFPQ&>(ivf);
        if (ivfpq.by_residual) {
            ivfpq.precompute_table();
        }
    } else if (typeid(ivf) == typeid(faiss::IndexIVFPQFastScan)) {
        auto& fs = static_cast<faiss::IndexIVFPQFastScan&>(ivf);
        if (fs.by_residual && fs.metric_type == faiss::METRIC_L2) {
            fs.precompute_table();
        }
    }
}

/** IndexIVFPQ::train_residual_o / IndexIVFPQFastScan::train_residual with
 * the PQ k-means in our engine: subsample as FAISS (pq.cp), residuals to
 * the coarse centroids when by_residual, batched PQ training, polysemous
 * reordering (IVFPQ, by FAISS), precomputed tables.
 */
void train_ivf_residual_pq(
        faiss::IndexIVF& ivf,
        faiss::ProductQuantizer& pq,
        bool by_residual,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    const int64_t d = ivf.d;
    std::vector<float> sample;
    const float* xs = maybe_subsample(
            d, n, pq.ksub * pq.cp.max_points_per_centroid, x, pq.cp.seed,
            sample);
    std::vector<float> residuals;
    if (by_residual) {
        std::vector<idx_t> lists = assign_to_lists(ivf, n, xs, params);
        residuals.resize(size_t(n) * d);
        ivf.quantizer->compute_residual_n(n, xs, residuals.data(),
                                          lists.data());
        xs = residuals.data();
    }
    pq.verbose = ivf.verbose;
    train_product_quantizer(pq, n, xs, params);

    auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(&ivf);
    if (ivfpq && ivfpq->do_polysemous_training) {
        faiss::PolysemousTraining default_training;
        const faiss::PolysemousTraining* training =
                ivfpq->polysemous_training ? ivfpq->polysemous_training
                                           : &default_training;
        training->optimize_pq_for_hamming(pq, n, xs);
    }
    refresh_precomputed_tables(ivf);
}

/** Level1Quantizer::train_q1 (quantizer_trains_alone 0 or 2) with
 * FlashClustering: the k-means of the coarse centroids, with ivf.cp, into
 * the quantizer (reset first). warm_start: nlist × d initial centroids, or
 * empty for FAISS's random draw. ivf.clustering_index, when set, is the
 * index FlashClustering fills (its metric picks the assignment), as FAISS
 * uses it.
 * @return the new centroids, nlist × d
 */
std::vector<float> train_coarse_centroids(
        faiss::IndexIVF& ivf,
        int64_t n,
        const float* x,
        const FlashParameters& params,
        std::vector<float> warm_start) {
    faiss::Index& quantizer = *ivf.quantizer;
    const int d = ivf.d, nlist = ivf.nlist;
    FlashClustering clus(d, nlist, flash_clustering_parameters(ivf.cp, params));
    clus.centroids = std::move(warm_start);
    if (ivf.quantizer_trains_alone == 0) {
        quantizer.reset();
        if (ivf.clustering_index) {
            clus.train(n, x, *ivf.clustering_index);
            quantizer.add(nlist, clus.centroids.data());
        } else {
            clus.train(n, x, quantizer);
        }
        quantizer.is_trained = true;
    } else {
        FAISS_THROW_IF_NOT_MSG(
                ivf.quantizer_trains_alone == 2,
                "quantizer_trains_alone must be 0, 1 or 2");
        // also accept spherical centroids: L2 and IP are then equivalent
        FAISS_THROW_IF_NOT(
                ivf.metric_type == faiss::METRIC_L2 ||
                (ivf.metric_type == faiss::METRIC_INNER_PRODUCT &&
                 ivf.cp.spherical));
        faiss::IndexFlatL2 assigner(d);
        clus.train(n, x, ivf.clustering_index ? *ivf.clustering_index : assigner);
        if (!quantizer.is_trained) {
            quantizer.train(nlist, clus.centroids.data());
        }
        quantizer.reset();
        quantizer.add(nlist, clus.centroids.data());
    }
    return std::move(clus.centroids);
}

void check_ivf(const faiss::IndexIVF& ivf) {
    FAISS_THROW_IF_NOT_MSG(ivf.quantizer, "IVF quantizer must not be null");
    FAISS_THROW_IF_NOT_FMT(
            ivf.quantizer->d == ivf.d,
            "IVF quantizer dimension %d differs from the index dimension %d",
            int(ivf.quantizer->d),
            int(ivf.d));
}

void train_ivf(
        faiss::IndexIVF& ivf,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    check_ivf(ivf);
    faiss::Index& quantizer = *ivf.quantizer;
    // Level 1, as Level1Quantizer::train_q1 decides.
    if (quantizer.is_trained && size_t(quantizer.ntotal) == ivf.nlist) {
        // already trained: FAISS keeps it too
    } else if (ivf.quantizer_trains_alone == 1) {
        train_any(quantizer, n, x, params);
        FAISS_THROW_IF_NOT_MSG(
                size_t(quantizer.ntotal) == ivf.nlist,
                "nlist not consistent with quantizer size");
    } else {
        train_coarse_centroids(ivf, n, x, params, {});
    }

    // Level 2. Exact types only: subclasses (IVFPQR, ...) train more.
    if (typeid(ivf) == typeid(faiss::IndexIVFPQ)) {
        auto& ivfpq = static_cast<faiss::IndexIVFPQ&>(ivf);
        train_ivf_residual_pq(ivf, ivfpq.pq, ivfpq.by_residual, n, x, params);
        ivf.is_trained = true;
    } else if (typeid(ivf) == typeid(faiss::IndexIVFPQFastScan)) {
        auto& fs = static_cast<faiss::IndexIVFPQFastScan&>(ivf);
        train_ivf_residual_pq(ivf, fs.pq, fs.by_residual, n, x, params);
        ivf.is_trained = true;
    } else {
        // FAISS skips the trained quantizer (train_q1 checks is_trained and
        // ntotal == nlist) and trains the rest (SQ ranges, ...).
        ivf.train(n, x);
    }
}

/// IndexPQ::train: the PQ (minus the polysemous hold-out) in our engine,
/// the polysemous reordering by FAISS.
void train_pq_index(
        faiss::IndexPQ& index,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    int64_t n_perm = 0;
    if (index.do_polysemous_training) {
        n_perm = std::min<int64_t>(
                index.polysemous_training.ntrain_permutation, n / 4);
    }
    index.pq.verbose = index.verbose;
    train_product_quantizer(index.pq, n - n_perm, x, params);
    if (index.do_polysemous_training) {
        index.polysemous_training.optimize_pq_for_hamming(
                index.pq, n_perm, x + (n - n_perm) * index.d);
    }
    index.is_trained = true;
}

/** VectorTransform::train by FAISS. An OPQMatrix without a user PQ gets,
 * for the duration, the PQ FAISS would make itself (d_out, M, 8 bits) with
 * an IndexFlatFlash as assign_index: its inner PQ k-means assign in our
 * engine, through FAISS's hook.
 */
void train_transform(
        faiss::VectorTransform& transform,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    auto* opq = dynamic_cast<faiss::OPQMatrix*>(&transform);
    if (!opq || opq->pq) {
        transform.train(n, x);
        return;
    }
    faiss::ProductQuantizer pq(opq->d_out, opq->M, 8);
    IndexFlatFlash assigner(pq.dsub, faiss::METRIC_L2, params);
    pq.assign_index = &assigner;
    opq->pq = &pq;
    try {
        opq->train(n, x);
    } catch (...) {
        opq->pq = nullptr;
        throw;
    }
    opq->pq = nullptr;
}

/// IndexPreTransform::train: the chain's untrained transforms, in order,
/// each on the output of the previous ones; then the sub-index.
void train_pretransform(
        faiss::IndexPreTransform& pt,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    const float* xi = x;
    std::unique_ptr<float[]> transformed;
    const bool train_sub_index = !pt.index->is_trained;
    for (size_t i = 0; i < pt.chain.size(); i++) {
        faiss::VectorTransform& t = *pt.chain[i];
        if (!t.is_trained) {
            train_transform(t, n, xi, params);
        }
        const bool needed_later = train_sub_index ||
                std::any_of(pt.chain.begin() + i + 1, pt.chain.end(),
                            [](const faiss::VectorTransform* next) {
                                return !next->is_trained;
                            });
        if (!needed_later) {
            break;
        }
        transformed.reset(t.apply(n, xi));
        xi = transformed.get();
    }
    if (train_sub_index) {
        train_any(*pt.index, n, xi, params);
    }
    pt.is_trained = true;
}

void train_any(
        faiss::Index& index,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(&index)) {
        train_pretransform(*pt, n, x, params);
    } else if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(&index)) {
        train_any(*idmap->index, n, x, params);
        idmap->is_trained = idmap->index->is_trained;
    } else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(&index)) {
        train_any(*refine->base_index, n, x, params);
        train_any(*refine->refine_index, n, x, params);
        refine->is_trained = true;
    } else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index)) {
        train_ivf(*ivf, n, x, params);
    } else if (typeid(index) == typeid(faiss::IndexPQ)) {
        train_pq_index(static_cast<faiss::IndexPQ&>(index), n, x, params);
    } else {
        index.train(n, x); // no k-means of ours in there
    }
}

} // namespace

void train_index(
        faiss::Index* index,
        int64_t n,
        const float* x,
        const FlashParameters& params) {
    FAISS_THROW_IF_NOT_MSG(index, "train_index: index is a null pointer");
    FAISS_THROW_IF_NOT_FMT(
            n > 0, "train_index: n=%" PRId64 " training vectors", n);
    check_finite(x, size_t(n) * index->d);
    train_any(*index, n, x, params);
}

namespace {

/// The vectors stored in an IVF index, sorted by id.
struct StoredVectors {
    std::vector<idx_t> ids;
    std::vector<idx_t> lists; ///< list of each vector before the move
    std::vector<float> x;            ///< ids.size() × d
};

/// Reads the stored (id, list) pairs, and the vectors: rows of originals
/// (indexed by id) when given, else reconstructed from the codes with the
/// current (old) coarse centroids.
StoredVectors collect_stored_vectors(
        const faiss::IndexIVF& ivf,
        const float* originals) {
    const faiss::InvertedLists& invlists = *ivf.invlists;
    const int64_t nlist = ivf.nlist, d = ivf.d;
    std::vector<int64_t> first(nlist + 1, 0);
    for (int64_t l = 0; l < nlist; l++) {
        first[l + 1] = first[l] + invlists.list_size(l);
    }
    const int64_t ntotal = first[nlist];
    FAISS_THROW_IF_NOT_FMT(
            ntotal == ivf.ntotal,
            "inverted lists hold %" PRId64 " vectors, ntotal is %" PRId64,
            ntotal,
            int64_t(ivf.ntotal));

    // In list order first.
    std::vector<idx_t> ids(ntotal), lists(ntotal);
    std::vector<float> x(size_t(ntotal) * d);
#pragma omp parallel for schedule(dynamic)
    for (int64_t l = 0; l < nlist; l++) {
        faiss::InvertedLists::ScopedIds list_ids(&invlists, l);
        for (int64_t o = 0; o < first[l + 1] - first[l]; o++) {
            const int64_t row = first[l] + o;
            ids[row] = list_ids[o];
            lists[row] = l;
            if (!originals) {
                ivf.reconstruct_from_offset(l, o, x.data() + row * d);
            }
        }
    }

    std::vector<int64_t> order(ntotal);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
    StoredVectors s;
    s.ids.resize(ntotal);
    s.lists.resize(ntotal);
    s.x.resize(size_t(ntotal) * d);
    for (int64_t i = 0; i < ntotal; i++) {
        const idx_t id = ids[order[i]];
        s.ids[i] = id;
        s.lists[i] = lists[order[i]];
        const float* src;
        if (originals) {
            FAISS_THROW_IF_NOT_FMT(
                    id >= 0 && id < ntotal,
                    "retrain_ivf: originals are indexed by id, but the index "
                    "holds id %" PRId64 ", outside [0, ntotal=%" PRId64 ")",
                    int64_t(id),
                    ntotal);
            src = originals + id * d;
        } else {
            src = x.data() + order[i] * d;
        }
        std::memcpy(s.x.data() + i * d, src, sizeof(float) * d);
    }
    return s;
}

/// Re-adds the stored vectors to the emptied index in their new lists.
/// The types whose add_with_ids is IndexIVF's (assign, then add_core) take
/// our assignment; the others assign again themselves.
void re_add(
        faiss::IndexIVF& ivf,
        const StoredVectors& s,
        const std::vector<idx_t>& new_lists) {
    const int64_t n = s.ids.size();
    // An array direct map forbids explicit ids: they are then 0..n-1 in
    // order, which the id-sorted rows reproduce.
    const idx_t* ids =
            ivf.direct_map.type == faiss::DirectMap::Array ? nullptr
                                                           : s.ids.data();
    const std::type_info& type = typeid(ivf);
    if (type == typeid(faiss::IndexIVFFlat) ||
        type == typeid(faiss::IndexIVFPQ) ||
        type == typeid(faiss::IndexIVFScalarQuantizer)) {
        ivf.add_core(n, s.x.data(), ids, new_lists.data());
    } else {
        ivf.add_with_ids(n, s.x.data(), ids);
    }
}

} // namespace

RetrainReport retrain_ivf(
        faiss::IndexIVF* ivf,
        int64_t n,
        const float* x_new,
        const FlashParameters& params,
        const float* originals) {
    FAISS_THROW_IF_NOT_MSG(ivf, "retrain_ivf: ivf is a null pointer");
    check_ivf(*ivf);
    FAISS_THROW_IF_NOT_MSG(
            ivf->is_trained,
            "retrain_ivf: the index is not trained; train it first "
            "(train_index)");
    FAISS_THROW_IF_NOT_MSG(ivf->invlists, "IVF index has no inverted lists");
    FAISS_THROW_IF_NOT_MSG(
            ivf->quantizer_trains_alone != 1,
            "retrain_ivf: a quantizer that trains alone "
            "(quantizer_trains_alone == 1) has no centroids to warm-start");
    FAISS_THROW_IF_NOT_FMT(
            size_t(ivf->quantizer->ntotal) == ivf->nlist,
            "retrain_ivf: the quantizer holds %" PRId64
            " centroids, nlist is %zd",
            int64_t(ivf->quantizer->ntotal),
            ivf->nlist);
    check_problem_size(n, ivf->d, ivf->nlist);
    check_finite(x_new, size_t(n) * ivf->d);
    if (originals) {
        check_finite(originals, size_t(ivf->ntotal) * ivf->d);
    }

    RetrainReport report;
    report.n_total = ivf->ntotal;

    // Reconstructions use the old centroids: read them before replacing.
    auto t0 = std::chrono::steady_clock::now();
    StoredVectors stored = collect_stored_vectors(*ivf, originals);
    report.reassign_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    std::vector<float> centroids(ivf->nlist * ivf->d);
    ivf->quantizer->reconstruct_n(0, ivf->nlist, centroids.data());
    train_coarse_centroids(*ivf, n, x_new, params, std::move(centroids));
    report.train_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    std::vector<idx_t> new_lists =
            assign_to_lists(*ivf, stored.ids.size(), stored.x.data(), params);
    for (size_t i = 0; i < new_lists.size(); i++) {
        report.n_moved += new_lists[i] != stored.lists[i];
    }
    ivf->reset(); // keeps quantizer, codec and direct-map type
    refresh_precomputed_tables(*ivf);
    re_add(*ivf, stored, new_lists);
    report.reassign_seconds += seconds_since(t0);
    return report;
}

} // namespace faiss_flash

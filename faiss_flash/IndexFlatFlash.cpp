#include <faiss_flash/IndexFlatFlash.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include <faiss/impl/FaissAssert.h>

#include <faiss_flash/engine/backend_factory.h>
#include <faiss_flash/engine/faiss_metric.h>

namespace faiss_flash {

namespace {

bool all_finite(const float* x, size_t count) {
    return std::all_of(x, x + count, [](float v) { return std::isfinite(v); });
}

} // namespace

IndexFlatFlash::IndexFlatFlash(
        idx_t d,
        faiss::MetricType metric,
        const FlashParameters& params)
        : faiss::IndexFlat(d, metric), flash(params) {}

IndexFlatFlash::IndexFlatFlash() = default;

void IndexFlatFlash::search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const {
    if (ntotal == 0 && has_fused_kernel(metric_type)) {
        FAISS_THROW_IF_NOT(k > 0);
        const float none = metric_type == faiss::METRIC_L2
                ? std::numeric_limits<float>::max()
                : std::numeric_limits<float>::lowest();
        std::fill(labels, labels + n * k, idx_t(-1));
        std::fill(distances, distances + n * k, none);
        return;
    }
    const bool fused = k == 1 && n > 0 &&
            has_fused_kernel(metric_type) && !(params && params->sel) &&
            all_finite(x, size_t(n) * d) &&
            all_finite(get_xb(), size_t(ntotal) * d);
    if (!fused) {
        faiss::IndexFlat::search(n, x, k, distances, labels, params);
        return;
    }
    // The queries are the engine's points, the stored vectors its centroids.
    LloydShape shape;
    shape.n = n;
    shape.d = d;
    shape.k = ntotal;
    shape.metric = engine_metric(metric_type);
    std::unique_ptr<LloydBackend> backend = make_backend(flash);
    backend->bind_points(shape, x, nullptr);
    backend->set_centroids(get_xb());
    backend->assign(labels, distances);
}

} // namespace faiss_flash

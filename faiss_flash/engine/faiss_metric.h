// The FAISS metrics the fused engine computes, and their engine names.

#pragma once

#include <faiss/MetricType.h>

#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {

/// True for METRIC_L2 and METRIC_INNER_PRODUCT, the metrics with fused
/// kernels; callers fall back to FAISS for the others.
inline bool has_fused_kernel(faiss::MetricType metric) {
    return metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT;
}

/// The engine's name of a metric for which has_fused_kernel() is true.
inline Metric engine_metric(faiss::MetricType metric) {
    return metric == faiss::METRIC_L2 ? Metric::L2 : Metric::InnerProduct;
}

} // namespace faiss_flash

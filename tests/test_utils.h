// Shared helpers of the test suite: fresh random inputs and fp64 references.

#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <faiss/impl/FaissException.h>

#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {
namespace testing {

/// A fresh seed per call, so every run draws new inputs; printed on failure
/// through SCOPED_TRACE by the callers. FAISS_FLASH_TEST_SEED=<seed> makes
/// every call return that seed, to replay a failure.
inline uint64_t fresh_seed() {
    if (const char* replay = std::getenv("FAISS_FLASH_TEST_SEED")) {
        return std::stoull(replay);
    }
    static std::random_device rd;
    return (uint64_t(rd()) << 32) | rd();
}

inline std::vector<float> randn(size_t count, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> v(count);
    for (float& f : v) {
        f = g(rng);
    }
    return v;
}

/// `centers` Gaussian centres in d dims, coordinates 4·N(0, 1): well
/// separated for unit-variance clusters.
inline std::vector<float> mixture_centres(int centers, int64_t d, uint64_t seed) {
    std::vector<float> mu = randn(size_t(centers) * d, seed);
    for (float& f : mu) {
        f *= 4;
    }
    return mu;
}

/// n points, each around a uniformly drawn centre of `mu` (centres × d),
/// unit variance.
inline std::vector<float> sample_mixture(
        const std::vector<float>& mu,
        int64_t d,
        int64_t n,
        uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    const int64_t centers = mu.size() / d;
    std::vector<float> x(n * d);
    for (int64_t i = 0; i < n; i++) {
        const int64_t c = rng() % centers;
        for (int64_t j = 0; j < d; j++) {
            x[i * d + j] = mu[c * d + j] + g(rng);
        }
    }
    return x;
}

/// n points around `centers` well separated Gaussian centres, in d dims.
inline std::vector<float> gaussian_mixture(
        int64_t n,
        int64_t d,
        int centers,
        uint64_t seed) {
    return sample_mixture(mixture_centres(centers, d, seed), d, n, seed + 1);
}

/// The message of the FaissException thrown by f, or "" if none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        return e.msg;
    }
    return "";
}

/// fp64 score of point i against centroid c (lower is better for both
/// metrics: L2 distance, or negated inner product).
inline double score64(
        const float* x,
        const float* c,
        int64_t d,
        Metric metric) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        s += metric == Metric::L2 ? (double(x[j]) - c[j]) * (double(x[j]) - c[j])
                                  : -double(x[j]) * c[j];
    }
    return s;
}

struct Reference {
    std::vector<int64_t> label;
    std::vector<double> best;   ///< best score
    std::vector<double> second; ///< second best score (inf if k == 1)
};

inline Reference assign64(
        const float* x,
        int64_t n,
        const float* c,
        int64_t k,
        int64_t d,
        Metric metric) {
    Reference r;
    r.label.resize(n);
    r.best.resize(n);
    r.second.resize(n);
    for (int64_t i = 0; i < n; i++) {
        double b = std::numeric_limits<double>::infinity(), s = b;
        int64_t bl = -1;
        for (int64_t j = 0; j < k; j++) {
            double v = score64(x + i * d, c + j * d, d, metric);
            if (v < b) {
                s = b;
                b = v;
                bl = j;
            } else if (v < s) {
                s = v;
            }
        }
        r.label[i] = bl;
        r.best[i] = b;
        r.second[i] = s;
    }
    return r;
}

} // namespace testing
} // namespace faiss_flash

#include <faiss_flash/engine/faiss_rules.h>

#include <cmath>
#include <cstring>
#include <faiss/utils/distances.h>
#include <faiss/utils/random.h>

namespace faiss_flash {

namespace {
/// FAISS's EPS for splits: "a bit above machine epsilon for float16".
constexpr double kSplitPerturbation = 1 / 1024.;
/// FAISS's seed stride between redos.
constexpr int64_t kRedoSeedStride = 15486557;
/// FAISS's fixed seed of the split random generator.
constexpr int64_t kSplitSeed = 1234;
} // namespace

std::vector<int> init_centroid_rows(int64_t n, int64_t seed, int redo) {
    std::vector<int> perm(n);
    faiss::rand_perm(perm.data(), n, seed + 1 + redo * kRedoSeedStride);
    return perm;
}

int split_empty_clusters(
        int64_t d,
        int64_t k_total,
        int64_t n,
        int64_t k_frozen,
        float* cluster_weights,
        float* centroids) {
    // FAISS works on the non-frozen tail only, with k counting that tail.
    const int64_t k = k_total - k_frozen;
    float* w = cluster_weights + k_frozen;
    float* c = centroids + k_frozen * d;

    int nsplit = 0;
    faiss::RandomGenerator rng(kSplitSeed);
    for (int64_t empty = 0; empty < k; empty++) {
        if (w[empty] != 0) {
            continue;
        }
        // Walk the clusters round-robin until one is drawn; big clusters are
        // drawn more often. The probability is evaluated in float as FAISS.
        int64_t donor = 0;
        for (;; donor = (donor + 1) % k) {
            float p = (w[donor] - 1.0) / (float)(n - k);
            if (rng.rand_float() < p) {
                break;
            }
        }
        float* ce = c + empty * d;
        float* cd = c + donor * d;
        std::memcpy(ce, cd, sizeof(float) * d);
        for (int64_t j = 0; j < d; j++) {
            const bool even = j % 2 == 0;
            ce[j] *= even ? 1 + kSplitPerturbation : 1 - kSplitPerturbation;
            cd[j] *= even ? 1 - kSplitPerturbation : 1 + kSplitPerturbation;
        }
        w[empty] = w[donor] / 2;
        w[donor] -= w[empty];
        nsplit++;
    }
    return nsplit;
}

void post_process_centroids(
        int64_t d,
        int64_t k,
        bool spherical,
        bool round_to_int,
        float* centroids) {
    if (spherical) {
        faiss::fvec_renorm_L2(d, k, centroids);
    }
    if (round_to_int) {
        for (int64_t i = 0; i < d * k; i++) {
            centroids[i] = roundf(centroids[i]);
        }
    }
}

double imbalance_factor(int64_t k, const int64_t* counts) {
    double total = 0, sum_sq = 0;
    for (int64_t i = 0; i < k; i++) {
        total += counts[i];
        sum_sq += counts[i] * (double)counts[i];
    }
    return sum_sq * k / (total * total);
}

} // namespace faiss_flash

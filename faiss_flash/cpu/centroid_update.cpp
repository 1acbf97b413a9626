#include <faiss_flash/cpu/centroid_update.h>

#include <cstring>
#include <vector>

#include <omp.h>

namespace faiss_flash {
namespace cpu {

UpdateStats update_centroids(
        const float* x,
        const float* weights,
        int64_t n,
        int64_t d,
        int64_t k,
        int64_t k_frozen,
        const int64_t* labels,
        int num_threads,
        float* centroids,
        float* cluster_weights,
        int64_t* counts) {
    // Stable counting sort: members[offsets[c] .. offsets[c + 1]) are the
    // points of cluster c in increasing index order.
    std::memset(counts, 0, sizeof(*counts) * k);
    for (int64_t i = 0; i < n; i++) {
        counts[labels[i]]++;
    }
    std::vector<int64_t> offsets(k + 1, 0);
    for (int64_t c = 0; c < k; c++) {
        offsets[c + 1] = offsets[c] + counts[c];
    }
    std::vector<int64_t> members(n);
    {
        std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
        for (int64_t i = 0; i < n; i++) {
            members[fill[labels[i]]++] = i;
        }
    }

    std::vector<double> shift(k, 0.0);
    std::vector<float> sums(size_t(num_threads) * d);

    // The arithmetic below is FAISS's compute_centroids, term for term, in
    // float and without contraction into FMA (this file is compiled with
    // -ffp-contract=off): c += x * w, hassign += w, c *= 1 / hassign.
#pragma omp parallel for schedule(dynamic, 16) num_threads(num_threads)
    for (int64_t c = 0; c < k; c++) {
        float total = 0;
        if (c < k_frozen) {
            for (int64_t m = offsets[c]; m < offsets[c + 1]; m++) {
                total += weights ? weights[members[m]] : 1.0;
            }
            cluster_weights[c] = total;
            continue;
        }
        float* sum = sums.data() + size_t(omp_get_thread_num()) * d;
        std::memset(sum, 0, sizeof(float) * d);
        for (int64_t m = offsets[c]; m < offsets[c + 1]; m++) {
            const float* xi = x + members[m] * d;
            if (weights) {
                const float w = weights[members[m]];
                total += w;
                for (int64_t j = 0; j < d; j++) {
                    sum[j] += xi[j] * w;
                }
            } else {
                total += 1.0;
                for (int64_t j = 0; j < d; j++) {
                    sum[j] += xi[j];
                }
            }
        }
        cluster_weights[c] = total;
        float* centroid = centroids + c * d;
        const float norm = total == 0 ? 0.0f : 1 / total;
        double moved = 0;
        for (int64_t j = 0; j < d; j++) {
            const float updated = sum[j] * norm;
            const double delta = double(updated) - centroid[j];
            moved += delta * delta;
            centroid[j] = updated;
        }
        shift[c] = moved;
    }

    UpdateStats stats;
    for (int64_t c = k_frozen; c < k; c++) {
        stats.centroid_shift += shift[c];
        stats.n_empty += cluster_weights[c] == 0;
    }
    return stats;
}

} // namespace cpu
} // namespace faiss_flash

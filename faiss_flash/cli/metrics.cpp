#include <faiss_flash/cli/metrics.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <utility>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace cli {

namespace {

/// Sum of -p log p over the counts of a histogram of n items.
template <typename Counts>
double entropy(const Counts& counts, double n) {
    double h = 0;
    for (const auto& entry : counts) {
        const double p = entry.second / n;
        h -= p * std::log(p);
    }
    return h;
}

} // namespace

double normalized_mutual_information(
        const std::vector<int64_t>& a,
        const std::vector<int64_t>& b) {
    FAISS_THROW_IF_NOT_FMT(
            a.size() == b.size() && !a.empty(),
            "NMI of labelings of %zd and %zd points",
            a.size(),
            b.size());
    const double n = a.size();
    std::unordered_map<int64_t, int64_t> count_a, count_b;
    std::map<std::pair<int64_t, int64_t>, int64_t> joint;
    for (size_t i = 0; i < a.size(); i++) {
        count_a[a[i]]++;
        count_b[b[i]]++;
        joint[{a[i], b[i]}]++;
    }
    const double h_a = entropy(count_a, n);
    const double h_b = entropy(count_b, n);
    if (h_a == 0 && h_b == 0) {
        return 1; // both constant: the same partition
    }
    double mi = 0;
    for (const auto& [labels, count] : joint) {
        const double p = count / n;
        mi += p *
                std::log(p * n * n /
                         (double(count_a[labels.first]) *
                          count_b[labels.second]));
    }
    return std::clamp(mi / ((h_a + h_b) / 2), 0.0, 1.0);
}

double recall_at_k(
        int64_t nq,
        int64_t k,
        const int64_t* found,
        const int64_t* truth) {
    FAISS_THROW_IF_NOT_MSG(nq > 0 && k > 0, "recall_at_k: nq and k must be > 0");
    int64_t hits = 0;
    for (int64_t q = 0; q < nq; q++) {
        const int64_t* t = truth + q * k;
        for (int64_t j = 0; j < k; j++) {
            const int64_t id = found[q * k + j];
            hits += id >= 0 && std::find(t, t + k, id) != t + k;
        }
    }
    return double(hits) / (double(nq) * k);
}

} // namespace cli
} // namespace faiss_flash

// Builds against the installed package only: clusters random data with
// FlashClustering and checks it beat the initial objective.
#include <faiss/IndexFlat.h>
#include <faiss/utils/random.h>
#include <faiss_flash/FlashClustering.h>

#include <cstdio>
#include <vector>

int main() {
    const int d = 16, k = 20, n = 2000;
    std::vector<float> x(n * d);
    faiss::float_randn(x.data(), x.size(), 7);
    faiss_flash::FlashClustering clus(d, k);
    clus.niter = 10;
    faiss::IndexFlatL2 index(d);
    clus.train(n, x.data(), index);
    const auto& s = clus.iteration_stats;
    const bool ok = s.size() == 10 && s.back().obj < s.front().obj &&
            index.ntotal == k;
    std::printf("consumer: backend=%s obj %g -> %g: %s\n", clus.last_backend,
                s.front().obj, s.back().obj, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

// Shared pieces of the CPU benchmark programs: run FAISS's and our
// clustering on the same data and seed, and report time per iteration.

#pragma once

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <omp.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>

#include <faiss_flash/FlashClustering.h>

namespace faiss_flash {
namespace bench {

struct Timed {
    double ms_per_iter = 0;
    std::vector<float> objective; ///< per iteration
};

/// Trains clus on x and returns FAISS's own per-iteration timing
/// (iteration_stats.time is cumulative wall time since preprocessing).
inline Timed time_clustering(faiss::Clustering& clus, int64_t n, const float* x) {
    faiss::IndexFlatL2 index(clus.d);
    clus.train(n, x, index);
    Timed t;
    for (const auto& s : clus.iteration_stats) {
        t.objective.push_back(s.obj);
    }
    t.ms_per_iter = clus.iteration_stats.back().time * 1000 /
            clus.iteration_stats.size();
    return t;
}

struct Comparison {
    Timed faiss;
    Timed flash;
    double max_obj_rel_diff = 0; ///< over iterations
};

inline Comparison compare_with_faiss(
        int64_t n,
        int d,
        int k,
        const float* x,
        int niter,
        BackendKind backend) {
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    faiss::Clustering ref(d, k, cp);
    FlashClusteringParameters fp;
    static_cast<faiss::ClusteringParameters&>(fp) = cp;
    fp.backend = backend;
    FlashClustering ours(d, k, fp);
    Comparison c;
    c.faiss = time_clustering(ref, n, x);
    c.flash = time_clustering(ours, n, x);
    for (size_t i = 0; i < c.faiss.objective.size(); i++) {
        const double a = c.faiss.objective[i], b = c.flash.objective[i];
        c.max_obj_rel_diff = std::max(c.max_obj_rel_diff, std::fabs(a - b) / a);
    }
    return c;
}

inline std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown CPU";
}

inline void print_header() {
    printf("machine: %s, %d OpenMP threads\n", cpu_model().c_str(),
           omp_get_max_threads());
    printf("%-28s %12s %12s %8s %14s\n", "case", "FAISS ms/it",
           "flash ms/it", "speedup", "max obj diff");
}

inline void print_row(const char* name, const Comparison& c) {
    printf("%-28s %12.1f %12.1f %7.2fx %14.2e\n", name, c.faiss.ms_per_iter,
           c.flash.ms_per_iter, c.faiss.ms_per_iter / c.flash.ms_per_iter,
           c.max_obj_rel_diff);
    fflush(stdout);
}

} // namespace bench
} // namespace faiss_flash

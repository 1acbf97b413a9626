#include <faiss_flash/cli/comparison.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include <omp.h>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/utils.h>

#include <faiss_flash/engine/backend_factory.h>

namespace faiss_flash {
namespace cli {

double ClusteringRun::iteration_ms(size_t i) const {
    const double before = i == 0 ? 0 : iteration_stats[i - 1].time;
    return (iteration_stats[i].time - before) * 1000;
}

double ClusteringRun::ms_per_iteration() const {
    const size_t count = iteration_stats.size();
    FAISS_THROW_IF_NOT_MSG(count > 0, "the run has no iterations");
    if (count == 1) {
        return iteration_ms(0);
    }
    return (iteration_stats.back().time - iteration_stats[0].time) * 1000 /
            (count - 1);
}

double ClusteringRun::final_objective() const {
    FAISS_THROW_IF_NOT_MSG(!iteration_stats.empty(), "the run has no iterations");
    return iteration_stats.back().obj;
}

namespace {

/// Trains clus on x into a flat index of the clustering's metric.
ClusteringRun run_clustering(
        faiss::Clustering& clus,
        int64_t n,
        const float* x,
        faiss::MetricType metric) {
    faiss::IndexFlat index(clus.d, metric);
    const double t0 = faiss::getmillisecs();
    clus.train(n, x, index);
    ClusteringRun run;
    run.train_s = (faiss::getmillisecs() - t0) / 1000;
    run.iteration_stats = clus.iteration_stats;
    run.centroids = clus.centroids;
    return run;
}

} // namespace

faiss::MetricType clustering_metric(const faiss::ClusteringParameters& cp) {
    return cp.spherical ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
}

ClusteringRun run_faiss_clustering(
        int64_t n,
        int d,
        int k,
        const float* x,
        const faiss::ClusteringParameters& cp) {
    faiss::Clustering clus(d, k, cp);
    ClusteringRun run = run_clustering(clus, n, x, clustering_metric(cp));
    run.engine = "FAISS";
    return run;
}

ClusteringRun run_flash_clustering(
        int64_t n,
        int d,
        int k,
        const float* x,
        const FlashClusteringParameters& params) {
    FlashClustering clus(d, k, params);
    ClusteringRun run = run_clustering(clus, n, x, clustering_metric(params));
    run.engine = std::string("faiss_flash (") + clus.last_backend + ")";
    return run;
}

double KMeansComparison::max_objective_rel_diff() const {
    double worst = 0;
    const size_t count = std::min(
            faiss.iteration_stats.size(), flash.iteration_stats.size());
    for (size_t i = 0; i < count; i++) {
        const double a = faiss.iteration_stats[i].obj;
        const double b = flash.iteration_stats[i].obj;
        worst = std::max(worst, std::fabs(a - b) / std::fabs(a));
    }
    return worst;
}

Table comparison_table(const std::vector<KMeansComparison>& cases) {
    Table t({"case", "FAISS ms/it", "flash ms/it", "speedup", "FAISS objective",
             "flash objective", "max obj rel diff"});
    for (const KMeansComparison& c : cases) {
        t.add_row({c.name,
                   format("%.1f", c.faiss.ms_per_iteration()),
                   format("%.1f", c.flash.ms_per_iteration()),
                   format("%.2fx",
                          c.faiss.ms_per_iteration() / c.flash.ms_per_iteration()),
                   format("%.6g", c.faiss.final_objective()),
                   format("%.6g", c.flash.final_objective()),
                   format("%.2e", c.max_objective_rel_diff())});
    }
    return t;
}

void write_iteration_csv(
        const std::string& path,
        const std::vector<KMeansComparison>& cases) {
    std::ofstream out(path);
    FAISS_THROW_IF_NOT_FMT(out, "cannot open %s for writing", path.c_str());
    out << "case,engine,iteration,objective,ms,imbalance,nsplit\n";
    for (const KMeansComparison& c : cases) {
        for (const ClusteringRun* run : {&c.faiss, &c.flash}) {
            for (size_t i = 0; i < run->iteration_stats.size(); i++) {
                const faiss::ClusteringIterationStats& s = run->iteration_stats[i];
                out << c.name << ',' << run->engine << ',' << i << ','
                    << format("%.9g", s.obj) << ','
                    << format("%.3f", run->iteration_ms(i)) << ','
                    << format("%.6f", s.imbalance_factor) << ',' << s.nsplit
                    << '\n';
            }
        }
    }
    out.close();
    FAISS_THROW_IF_NOT_FMT(out, "cannot write %s", path.c_str());
}

std::vector<int64_t> nearest_centroid_labels(
        int64_t n,
        int64_t d,
        const float* x,
        int64_t k,
        const float* centroids,
        faiss::MetricType metric,
        const FlashParameters& params) {
    FAISS_THROW_IF_NOT_MSG(
            metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT,
            "nearest_centroid_labels: L2 or inner product only");
    LloydShape shape;
    shape.n = n;
    shape.d = d;
    shape.k = k;
    shape.metric = metric == faiss::METRIC_L2 ? Metric::L2 : Metric::InnerProduct;
    std::unique_ptr<LloydBackend> backend = make_backend(params);
    backend->bind_points(shape, x, nullptr);
    backend->set_centroids(centroids);
    std::vector<int64_t> labels(n);
    backend->assign(labels.data(), nullptr);
    return labels;
}

std::string machine_description() {
    std::ifstream f("/proc/cpuinfo");
    std::string line, model = "unknown CPU";
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    return format("%s, %d OpenMP threads", model.c_str(), omp_get_max_threads());
}

} // namespace cli
} // namespace faiss_flash

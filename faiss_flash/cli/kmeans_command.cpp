#include <faiss_flash/cli/commands.h>

#include <cstdio>

#include <faiss_flash/cli/comparison.h>
#include <faiss_flash/cli/options.h>
#include <faiss_flash/cli/progress.h>
#include <faiss_flash/cli/table.h>
#include <faiss_flash/io/vector_formats.h>

namespace faiss_flash {
namespace cli {

int kmeans_command(const std::vector<std::string>& args) {
    std::string input, output, labels_path;
    int k = 0;
    bool quiet = false;
    ClusteringOptions clustering;
    EngineOptions engine;
    ArgumentParser parser(
            "faiss-flash kmeans",
            "Clusters the vectors of IN (*.fvecs, *.bvecs, *.npy, *idx3-ubyte[.gz])\n"
            "into K centroids with faiss_flash's exact k-means, FAISS's semantics\n"
            "(same initial centroids for the same seed, same subsampling), and\n"
            "writes the K centroids to OUT (*.npy or *.fvecs).");
    parser.add_positional("IN", "input vectors", &input);
    parser.add_option("--k", "K", "number of centroids", &k, Presence::Required);
    parser.add_option("-o,--output", "OUT", "centroids file, *.npy or *.fvecs",
                      &output, Presence::Required);
    parser.add_option("--labels", "LABELS",
                      "also write the nearest centroid of every input vector "
                      "(a .npy int64 array)", &labels_path);
    clustering.add_to(parser);
    engine.add_to(parser);
    parser.add_flag("-q,--quiet", "no per-iteration progress lines", &quiet);
    if (!parser.parse(args)) {
        return 0;
    }
    FlashClusteringParameters params =
            flash_clustering_parameters(clustering, engine);
    if (k < 1) {
        throw UsageError("--k must be >= 1");
    }
    check_vector_output_name(output);
    const bool labels_npy = labels_path.size() >= 4 &&
            labels_path.compare(labels_path.size() - 4, 4, ".npy") == 0;
    if (!labels_path.empty() && !labels_npy) {
        throw UsageError("--labels must name a .npy file, got " + labels_path);
    }

    const FloatMatrix x = read_vectors(input);
    printf("%s: %ld vectors of dimension %ld\n", input.c_str(), long(x.n),
           long(x.d));
    if (x.n > int64_t(k) * params.max_points_per_centroid) {
        printf("FAISS's subsampling: clustering %ld of them (k * %d, see "
               "--max-points-per-centroid)\n",
               long(k) * params.max_points_per_centroid,
               params.max_points_per_centroid);
    }
    ProgressPrinter progress(stdout, "faiss_flash");
    if (!quiet) {
        params.observer = &progress;
    }
    const ClusteringRun run =
            run_flash_clustering(x.n, x.d, k, x.data.data(), params);
    write_vectors(output, k, x.d, run.centroids.data());
    if (!labels_path.empty()) {
        const std::vector<int64_t> labels = nearest_centroid_labels(
                x.n, x.d, x.data.data(), k, run.centroids.data(),
                clustering_metric(params), params);
        write_npy_labels(labels_path, x.n, labels.data());
    }

    Table summary({"k-means", "summary"}, Table::Layout::KeyValue);
    summary.add_row({"input", format("%s (%ld x %ld)", input.c_str(), long(x.n),
                                     long(x.d))});
    summary.add_row({"k", std::to_string(k)});
    summary.add_row({"engine", run.engine});
    summary.add_row({"iterations", std::to_string(run.iteration_stats.size())});
    summary.add_row({"ms / iteration", format("%.1f", run.ms_per_iteration())});
    summary.add_row({"final objective", format("%.6g", run.final_objective())});
    summary.add_row({"imbalance", format("%.3f",
                                         run.iteration_stats.back().imbalance_factor)});
    summary.add_row({"train time", format("%.2f s", run.train_s)});
    summary.add_row({"centroids", output});
    if (!labels_path.empty()) {
        summary.add_row({"labels", labels_path});
    }
    printf("\n");
    summary.print(stdout);
    return 0;
}

} // namespace cli
} // namespace faiss_flash

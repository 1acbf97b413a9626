#include <faiss_flash/cli/commands.h>

#include <cstdio>

#include <faiss_flash/cli/comparison.h>
#include <faiss_flash/cli/options.h>
#include <faiss_flash/cli/progress.h>
#include <faiss_flash/io/vector_formats.h>

namespace faiss_flash {
namespace cli {

int bench_command(const std::vector<std::string>& args) {
    std::string input, output;
    std::vector<int> ks = {256};
    bool quiet = false;
    ClusteringOptions clustering;
    clustering.niter = 20;
    EngineOptions engine;
    ArgumentParser parser(
            "faiss-flash bench",
            "Runs faiss::Clustering and faiss_flash's k-means on the vectors of IN\n"
            "with the same parameters and seed, for each --k, prints them side by\n"
            "side (time per iteration, objectives) and writes every iteration's\n"
            "statistics to OUT as CSV. FAISS uses OMP_NUM_THREADS threads; pass\n"
            "the same --threads (or none) for a fair comparison.");
    parser.add_positional("IN", "input vectors (*.fvecs, *.bvecs, *.npy, *idx3-ubyte[.gz])",
                          &input);
    parser.add_option("--k", "K", "number of centroids", &ks);
    parser.add_option("-o,--output", "OUT", "per-iteration CSV", &output,
                      Presence::Required);
    clustering.add_to(parser);
    engine.add_to(parser);
    parser.add_flag("-q,--quiet", "no per-iteration progress lines", &quiet);
    if (!parser.parse(args)) {
        return 0;
    }
    FlashClusteringParameters params =
            flash_clustering_parameters(clustering, engine);
    for (int k : ks) {
        if (k < 1) {
            throw UsageError("--k must be >= 1");
        }
    }

    const FloatMatrix x = read_vectors(input);
    printf("%s: %ld vectors of dimension %ld\n", input.c_str(), long(x.n),
           long(x.d));
    ProgressPrinter progress(stdout, "faiss_flash");
    if (!quiet) {
        params.observer = &progress;
    }
    faiss::ClusteringParameters faiss_cp = params;
    faiss_cp.verbose = !quiet; // FAISS's own progress lines

    std::vector<KMeansComparison> cases;
    for (int k : ks) {
        KMeansComparison c;
        c.name = format("k=%d", k);
        printf("\n== %s: FAISS\n", c.name.c_str());
        fflush(stdout);
        c.faiss = run_faiss_clustering(x.n, x.d, k, x.data.data(), faiss_cp);
        printf("== %s: faiss_flash\n", c.name.c_str());
        c.flash = run_flash_clustering(x.n, x.d, k, x.data.data(), params);
        cases.push_back(std::move(c));
    }
    write_iteration_csv(output, cases);

    printf("\n%s: %ld x %ld, %d iterations, seed %d; %s\n", input.c_str(),
           long(x.n), long(x.d), params.niter, params.seed,
           machine_description().c_str());
    comparison_table(cases).print(stdout);
    printf("per-iteration statistics: %s\n", output.c_str());
    return 0;
}

} // namespace cli
} // namespace faiss_flash

#include <faiss_flash/cli/commands.h>

#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include <faiss/AutoTune.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>
#include <faiss/utils/utils.h>

#include <faiss_flash/cli/comparison.h>
#include <faiss_flash/cli/metrics.h>
#include <faiss_flash/cli/options.h>
#include <faiss_flash/cli/progress.h>
#include <faiss_flash/cli/table.h>
#include <faiss_flash/io/idx_format.h>
#include <faiss_flash/io/vector_formats.h>
#include <faiss_flash/train_index.h>

extern char** environ;

namespace faiss_flash {
namespace cli {

namespace {

namespace fs = std::filesystem;

/// The 70000 Fashion-MNIST images (train then test) and their classes.
struct FashionMnist {
    int64_t n_train = 0;
    FloatMatrix images;
    std::vector<int64_t> classes;
};

FashionMnist load_fashion_mnist(const std::string& dir) {
    FashionMnist data;
    for (const char* part : {"train", "t10k"}) {
        const std::string images = dir + "/" + part + "-images-idx3-ubyte.gz";
        const std::string labels = dir + "/" + part + "-labels-idx1-ubyte.gz";
        FAISS_THROW_IF_NOT_FMT(
                fs::exists(images) && fs::exists(labels),
                "%s or %s missing: install Debian's dataset-fashion-mnist "
                "(apt-get install dataset-fashion-mnist) or pass --data DIR",
                images.c_str(),
                labels.c_str());
        IdxImages img = read_idx_images(images);
        const std::vector<int> cls = read_idx_labels(labels);
        FAISS_THROW_IF_NOT_FMT(
                int64_t(cls.size()) == img.n,
                "%s has %zd labels for %ld images",
                labels.c_str(),
                cls.size(),
                long(img.n));
        data.images.d = img.d;
        data.images.n += img.n;
        data.images.data.insert(
                data.images.data.end(), img.data.begin(), img.data.end());
        data.classes.insert(data.classes.end(), cls.begin(), cls.end());
        if (data.n_train == 0) {
            data.n_train = img.n;
        }
    }
    return data;
}

/// The plotting script: installed next to the binary
/// (<prefix>/share/faiss_flash), else in the source tree it was built from.
fs::path plot_script() {
    const char* name = "plot_iterations.py";
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const fs::path installed =
            exe.parent_path().parent_path() / "share" / "faiss_flash" / name;
    if (!ec && fs::exists(installed)) {
        return installed;
    }
    return fs::path(FAISS_FLASH_SOURCE_DIR) / "benchmarks" / name;
}

/// Runs a program (searched in PATH) and returns its exit status, or -1
/// when it could not be started or did not exit normally.
int run_program(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid;
    if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) {
        return -1;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

/// One trained IVF index: training time and recall@10 against exact search.
struct IvfResult {
    double train_s = 0;
    double recall_at_10 = 0;
};

IvfResult train_and_search_ivf(
        const std::string& factory,
        bool with_faiss_flash,
        const FashionMnist& data,
        int64_t nq,
        int nprobe,
        const std::vector<int64_t>& truth,
        const FlashParameters& params,
        bool verbose) {
    const int64_t d = data.images.d;
    const float* base = data.images.data.data();
    const float* queries = base + data.n_train * d;
    std::unique_ptr<faiss::Index> index(faiss::index_factory(d, factory.c_str()));
    index->verbose = verbose && !with_faiss_flash;
    IvfResult r;
    const double t0 = faiss::getmillisecs();
    if (with_faiss_flash) {
        train_index(index.get(), data.n_train, base, params);
    } else {
        index->train(data.n_train, base);
    }
    r.train_s = (faiss::getmillisecs() - t0) / 1000;
    index->verbose = false;
    index->add(data.n_train, base);
    faiss::ParameterSpace().set_index_parameter(index.get(), "nprobe", nprobe);
    std::vector<float> distances(nq * 10);
    std::vector<int64_t> found(nq * 10);
    index->search(nq, queries, 10, distances.data(), found.data());
    r.recall_at_10 = recall_at_k(nq, 10, found.data(), truth.data());
    return r;
}

} // namespace

int demo_command(const std::vector<std::string>& args) {
    std::string output, data_dir = fashion_mnist_dir(), ivf = "IVF1024,Flat";
    std::string python = "/usr/bin/python3";
    int k = 256, nprobe = 16, nq = 1000;
    bool no_plot = false, quiet = false;
    ClusteringOptions clustering;
    clustering.niter = 20;
    EngineOptions engine;
    ArgumentParser parser(
            "faiss-flash demo",
            "Fashion-MNIST (70000 images x 784 pixels, Debian's dataset-fashion-mnist):\n"
            "1. k-means with faiss::Clustering and with faiss_flash, same seed: time\n"
            "   per iteration, objective, NMI of the clusters against the 10 classes;\n"
            "2. an IVF index on the 60000 training images trained by FAISS and by\n"
            "   faiss_flash::train_index: training time, recall@10 of test queries.\n"
            "Prints the tables, writes them to OUTDIR/summary.txt, the iterations to\n"
            "OUTDIR/kmeans_iterations.csv and plots them to OUTDIR/kmeans_iterations.png\n"
            "(matplotlib, Debian's python3-matplotlib).");
    parser.add_option("-o,--output", "OUTDIR", "directory of the results (created)",
                      &output, Presence::Required);
    parser.add_option("--data", "DIR", "directory of the Fashion-MNIST *.gz files",
                      &data_dir);
    parser.add_option("--k", "K", "number of k-means centroids", &k);
    clustering.add_to(parser);
    engine.add_to(parser);
    parser.add_option("--ivf", "FACTORY", "index_factory string of the IVF index",
                      &ivf);
    parser.add_option("--nprobe", "P", "lists visited per query", &nprobe);
    parser.add_option("--nq", "Q", "test images used as queries (<= 10000)", &nq);
    parser.add_flag("--no-plot", "skip the PNG", &no_plot);
    parser.add_option("--python", "PYTHON", "interpreter that runs the plot script",
                      &python);
    parser.add_flag("-q,--quiet", "no per-iteration progress lines", &quiet);
    if (!parser.parse(args)) {
        return 0;
    }
    FlashClusteringParameters params =
            flash_clustering_parameters(clustering, engine);
    if (k < 1) {
        throw UsageError("--k must be >= 1");
    }
    if (nq < 1 || nq > 10000 || nprobe < 1) {
        throw UsageError("--nq must be in 1..10000 and --nprobe >= 1");
    }
    fs::create_directories(output);

    const FashionMnist data = load_fashion_mnist(data_dir);
    const FloatMatrix& x = data.images;
    printf("Fashion-MNIST: %ld images x %ld pixels, %s\n", long(x.n), long(x.d),
           machine_description().c_str());

    // ---- 1. k-means, FAISS then faiss_flash
    ProgressPrinter progress(stdout, "faiss_flash");
    if (!quiet) {
        params.observer = &progress;
    }
    faiss::ClusteringParameters faiss_cp = params;
    faiss_cp.verbose = !quiet;
    KMeansComparison kmeans;
    kmeans.name = format("Fashion-MNIST k=%d", k);
    printf("\n== k-means, k=%d, %d iterations: FAISS\n", k, clustering.niter);
    fflush(stdout);
    kmeans.faiss = run_faiss_clustering(x.n, x.d, k, x.data.data(), faiss_cp);
    printf("== k-means: faiss_flash\n");
    kmeans.flash = run_flash_clustering(x.n, x.d, k, x.data.data(), params);
    const faiss::MetricType metric = clustering_metric(params);
    Table kmeans_table({format("k-means, %ld x %ld, k=%d", long(x.n), long(x.d), k),
                        "ms/iteration", "final objective", "NMI vs classes",
                        "train s"});
    for (const ClusteringRun* run : {&kmeans.faiss, &kmeans.flash}) {
        const std::vector<int64_t> labels = nearest_centroid_labels(
                x.n, x.d, x.data.data(), k, run->centroids.data(), metric, params);
        kmeans_table.add_row(
                {run->engine, format("%.1f", run->ms_per_iteration()),
                 format("%.6g", run->final_objective()),
                 format("%.4f", normalized_mutual_information(labels, data.classes)),
                 format("%.2f", run->train_s)});
    }
    const std::string csv = (fs::path(output) / "kmeans_iterations.csv").string();
    write_iteration_csv(csv, {kmeans});

    // ---- 2. IVF training
    const int64_t d = x.d;
    const float* queries = x.data.data() + data.n_train * d;
    std::vector<int64_t> truth(int64_t(nq) * 10);
    {
        faiss::IndexFlatL2 exact(d);
        exact.add(data.n_train, x.data.data());
        std::vector<float> distances(truth.size());
        exact.search(nq, queries, 10, distances.data(), truth.data());
    }
    printf("\n== %s training: FAISS\n", ivf.c_str());
    fflush(stdout);
    const IvfResult ivf_faiss = train_and_search_ivf(
            ivf, false, data, nq, nprobe, truth, params, !quiet);
    printf("== %s training: faiss_flash::train_index\n", ivf.c_str());
    const IvfResult ivf_flash = train_and_search_ivf(
            ivf, true, data, nq, nprobe, truth, params, !quiet);
    Table ivf_table({format("%s on %ld training images", ivf.c_str(),
                            long(data.n_train)),
                     "train s", format("recall@10 (nprobe %d, %d queries)", nprobe, nq)});
    ivf_table.add_row({"FAISS's own training", format("%.2f", ivf_faiss.train_s),
                       format("%.4f", ivf_faiss.recall_at_10)});
    ivf_table.add_row({"faiss_flash::train_index", format("%.2f", ivf_flash.train_s),
                       format("%.4f", ivf_flash.recall_at_10)});

    // ---- tables, on screen and in OUTDIR/summary.txt
    const std::string summary_path = (fs::path(output) / "summary.txt").string();
    std::unique_ptr<FILE, int (*)(FILE*)> summary(
            fopen(summary_path.c_str(), "w"), fclose);
    FAISS_THROW_IF_NOT_FMT(summary, "cannot write %s", summary_path.c_str());
    for (FILE* out : {stdout, summary.get()}) {
        fprintf(out, "\n%s\n", machine_description().c_str());
        kmeans_table.print(out);
        fprintf(out, "speedup %.2fx per iteration; largest per-iteration "
                "objective difference %.2e\n\n",
                kmeans.faiss.ms_per_iteration() / kmeans.flash.ms_per_iteration(),
                kmeans.max_objective_rel_diff());
        ivf_table.print(out);
    }
    summary.reset();

    int status = 0;
    if (!no_plot) {
        const std::string png =
                (fs::path(output) / "kmeans_iterations.png").string();
        const int plot_status =
                run_program({python, plot_script().string(), csv, png});
        if (plot_status == 0) {
            printf("plot: %s\n", png.c_str());
        } else {
            fprintf(stderr,
                    "faiss-flash demo: the plot failed (%s %s exited with %d); "
                    "is python3-matplotlib installed? (--no-plot skips it)\n",
                    python.c_str(),
                    plot_script().c_str(),
                    plot_status);
            status = 1;
        }
    }
    printf("results: %s (summary.txt, kmeans_iterations.csv%s)\n",
           output.c_str(), no_plot ? "" : ", kmeans_iterations.png");
    return status;
}

} // namespace cli
} // namespace faiss_flash

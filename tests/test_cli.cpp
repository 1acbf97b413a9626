// The faiss-flash command-line tool: its argument parsing and measures as
// functions, then the executable itself (FAISS_FLASH_CLI_PATH) run on small
// files: outputs, progress, format round trips, bad files and bad usage
// (exit status and message, never a crash), FAISS-readable indexes, and the
// demo when Debian's Fashion-MNIST is installed.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <sstream>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

#include <faiss_flash/FlashClustering.h>
#include <faiss_flash/cli/arguments.h>
#include <faiss_flash/cli/metrics.h>
#include <faiss_flash/io/idx_format.h>
#include <faiss_flash/io/vector_formats.h>

#include "file_utils.h"
#include "test_utils.h"

using namespace faiss_flash;
using namespace faiss_flash::testing;
using cli::ArgumentParser;
using cli::Presence;
using cli::UsageError;

namespace {

// ------------------------------------------------------- ArgumentParser

struct ParsedArgs {
    std::string in, out = "default.npy";
    int k = 0;
    double tol = 0.5;
    std::vector<int> ks = {256};
    bool flag = false;
};

/// Parses args with a parser like the subcommands'.
bool parse(const std::vector<std::string>& args, ParsedArgs& a) {
    ArgumentParser p("faiss-flash test", "A test parser.");
    p.add_positional("IN", "input", &a.in);
    p.add_option("--k", "K", "clusters", &a.k, Presence::Required);
    p.add_option("-o,--output", "OUT", "output", &a.out);
    p.add_option("--tol", "T", "tolerance", &a.tol);
    p.add_option("--ks", "K", "several", &a.ks);
    p.add_flag("--flag", "a flag", &a.flag);
    return p.parse(args);
}

std::string usage_error_of(const std::vector<std::string>& args) {
    ParsedArgs a;
    try {
        parse(args, a);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

TEST(CliArguments, ParsesEveryKind) {
    ParsedArgs a;
    ASSERT_TRUE(parse({"x.npy", "--k", "12", "-o", "c.fvecs", "--tol=1e-3",
                       "--ks", "4", "--ks=8", "--flag"}, a));
    EXPECT_EQ(a.in, "x.npy");
    EXPECT_EQ(a.k, 12);
    EXPECT_EQ(a.out, "c.fvecs");
    EXPECT_EQ(a.tol, 1e-3);
    EXPECT_EQ(a.ks, std::vector<int>({4, 8})); // the default is replaced
    EXPECT_TRUE(a.flag);

    ParsedArgs defaults;
    ASSERT_TRUE(parse({"--k=3", "x.npy", "--output", "-"}, defaults));
    EXPECT_EQ(defaults.out, "-");
    EXPECT_EQ(defaults.ks, std::vector<int>({256}));
    EXPECT_FALSE(defaults.flag);
}

TEST(CliArguments, Errors) {
    EXPECT_EQ(usage_error_of({"x.npy"}), "missing --k K");
    EXPECT_EQ(usage_error_of({"--k", "3"}), "missing IN");
    EXPECT_EQ(usage_error_of({"x.npy", "--k", "12x"}), "--k expects an integer, got '12x'");
    EXPECT_EQ(usage_error_of({"x.npy", "--k", "3", "--tol", "abc"}),
              "--tol expects a number, got 'abc'");
    EXPECT_EQ(usage_error_of({"x.npy", "--k"}), "--k needs a value (K)");
    EXPECT_EQ(usage_error_of({"x.npy", "--k", "3", "--bogus"}), "unknown option --bogus");
    EXPECT_EQ(usage_error_of({"x.npy", "y.npy", "--k", "3"}), "unexpected argument 'y.npy'");
    EXPECT_EQ(usage_error_of({"x.npy", "--k", "3", "--k", "4"}), "--k given twice");
    EXPECT_EQ(usage_error_of({"x.npy", "--k", "3", "--flag=1"}), "--flag takes no value");
}

TEST(CliArguments, HelpListsEverything) {
    ParsedArgs a;
    ::testing::internal::CaptureStdout();
    EXPECT_FALSE(parse({"x.npy", "--help"}, a));
    const std::string help = ::testing::internal::GetCapturedStdout();
    EXPECT_EQ(help.rfind("usage: faiss-flash test IN --k K [options]\n", 0), 0u) << help;
    for (const char* text : {"-o, --output OUT", "(default default.npy)", "(required)",
                             "--ks K", "repeatable", "--flag", "(default 0.5)"}) {
        EXPECT_NE(help.find(text), std::string::npos) << text << "\n" << help;
    }
}

// ------------------------------------------------------------- measures

TEST(CliMetrics, NormalizedMutualInformation) {
    using cli::normalized_mutual_information;
    // the same partition under other label values
    EXPECT_NEAR(normalized_mutual_information({0, 0, 1, 1, 2}, {7, 7, -1, -1, 3}), 1, 1e-12);
    // independent labelings
    EXPECT_NEAR(normalized_mutual_information({0, 0, 1, 1}, {0, 1, 0, 1}), 0, 1e-12);
    // by hand (and scikit-learn's normalized_mutual_info_score)
    EXPECT_NEAR(normalized_mutual_information({0, 0, 1, 1}, {0, 0, 0, 1}),
                0.3437110184854508, 1e-12);
    EXPECT_EQ(normalized_mutual_information({4, 4}, {1, 1}), 1);
    EXPECT_THROW(normalized_mutual_information({0, 1}, {0}), faiss::FaissException);
}

TEST(CliMetrics, RecallAtK) {
    const int64_t truth[6] = {1, 2, 3, 4, 5, 6};
    const int64_t found[6] = {3, 2, 9, -1, 6, 4};
    // query 0: 2 of 3, query 1: 2 of 3 (-1 never matches)
    EXPECT_DOUBLE_EQ(cli::recall_at_k(2, 3, found, truth), 4.0 / 6);
}

// ------------------------------------------------------------- the tool

const std::string kCli = FAISS_FLASH_CLI_PATH;

std::string quoted(const std::string& s) {
    return "'" + s + "'";
}

CommandResult run_cli(const std::string& args, const ScratchDir& dir) {
    return run_command(kCli + " " + args, dir);
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t count = 0;
    for (size_t pos = text.find(what); pos != std::string::npos;
         pos = text.find(what, pos + 1)) {
        count++;
    }
    return count;
}

/// Expects a run that ended by itself with `status` and `message` on stderr.
#define EXPECT_FAILS_WITH(result, expected_status, message)                 \
    do {                                                                     \
        const CommandResult& r_ = (result);                                  \
        EXPECT_TRUE(r_.exited) << "killed by a signal\n" << r_.err;          \
        EXPECT_EQ(r_.status, expected_status) << r_.out << r_.err;           \
        EXPECT_NE(r_.err.find(message), std::string::npos) << r_.err;        \
        EXPECT_EQ(r_.err.find("Error"), std::string::npos) << r_.err;       \
    } while (0)

/// Clustered random data in dir/name (format by extension).
FloatMatrix write_dataset(const ScratchDir& dir, const std::string& name,
                          int64_t n, int64_t d, uint64_t seed) {
    FloatMatrix m{n, d, gaussian_mixture(n, d, 10, seed)};
    write_vectors(dir / name, n, d, m.data.data());
    return m;
}

TEST(Cli, HelpOfEverySubcommand) {
    ScratchDir dir;
    CommandResult r = run_cli("--help", dir);
    EXPECT_EQ(r.status, 0);
    for (const char* name : {"kmeans", "train-index", "bench", "demo"}) {
        EXPECT_NE(r.out.find(name), std::string::npos) << r.out;
    }
    for (const char* name : {"kmeans", "bench", "demo"
                             , "train-index"
         }) {
        SCOPED_TRACE(name);
        r = run_cli(std::string(name) + " --help", dir);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out.rfind(std::string("usage: faiss-flash ") + name, 0), 0u) << r.out;
        EXPECT_NE(r.out.find("-o, --output"), std::string::npos) << r.out;
    }
}

TEST(Cli, UsageErrorsExitWith2) {
    ScratchDir dir;
    write_dataset(dir, "x.npy", 100, 4, fresh_seed());
    const std::string x = quoted(dir / "x.npy"), out = " -o " + quoted(dir / "c.npy");
    EXPECT_FAILS_WITH(run_cli("", dir), 2, "usage: faiss-flash SUBCOMMAND");
    EXPECT_FAILS_WITH(run_cli("cluster", dir), 2, "unknown subcommand 'cluster'");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out, dir), 2,
                      "faiss-flash kmeans: missing --k K\n'faiss-flash kmeans --help'");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --bogus", dir), 2,
                      "unknown option --bogus");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k four", dir), 2,
                      "--k expects an integer");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --cpu --dtype fp16", dir), 2,
                      "--dtype fp16 needs the GPU backend: the CPU backend computes "
                      "in fp32 only");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --dtype fp64", dir), 2,
                      "--dtype must be fp32, fp16 or bf16");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --gpu --cpu", dir), 2,
                      "--gpu and --cpu exclude each other");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --labels l.txt", dir), 2,
                      "--labels must name a .npy file");
    EXPECT_FAILS_WITH(run_cli("kmeans " + x + out + " --k 4 --niter 0", dir), 2,
                      "--niter must be >= 1");
    EXPECT_FALSE(std::filesystem::exists(dir / "c.npy"));
}

TEST(Cli, KMeansWritesTheLibrarysCentroidsAndLabels) {
    ScratchDir dir;
    const int64_t n = 3000, d = 8;
    const int k = 12, niter = 6;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const FloatMatrix x = write_dataset(dir, "x.npy", n, d, seed);
    const CommandResult r = run_cli(
            "kmeans " + quoted(dir / "x.npy") + " --k 12 --niter 6 --seed 77 --cpu"
            " -o " + quoted(dir / "c.npy") + " --labels " + quoted(dir / "l.npy"),
            dir);
    ASSERT_EQ(r.status, 0) << r.out << r.err;

    // one progress line per iteration, FAISS's fields, time, elapsed, ETA
    EXPECT_EQ(count_of(r.out, "[faiss_flash]  Iteration "), size_t(niter)) << r.out;
    EXPECT_EQ(count_of(r.out, " ms, elapsed "), size_t(niter)) << r.out;
    EXPECT_NE(r.out.find("Iteration 5 ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ETA 0.00 s\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("final objective"), std::string::npos) << r.out;

    // the same centroids as FlashClustering in this process
    FlashClusteringParameters params;
    params.niter = niter;
    params.seed = 77;
    params.backend = BackendKind::CPU;
    FlashClustering clus(d, k, params);
    faiss::IndexFlatL2 index(d);
    clus.train(n, x.data.data(), index);
    const FloatMatrix c = read_npy(dir / "c.npy");
    EXPECT_EQ(c.n, k);
    EXPECT_EQ(c.d, d);
    EXPECT_EQ(c.data, clus.centroids);

    // labels: the nearest centroid of every input vector (fp64 reference,
    // near-ties excepted)
    const std::vector<int64_t> labels = read_npy_labels(dir / "l.npy");
    ASSERT_EQ(labels.size(), size_t(n));
    const Reference ref = assign64(x.data.data(), n, c.data.data(), k, d, Metric::L2);
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] != ref.label[i]) {
            EXPECT_LT(ref.second[i] - ref.best[i], 1e-4 * std::abs(ref.best[i])) << i;
        }
    }
}

TEST(Cli, FormatsRoundTripThroughKMeans) {
    ScratchDir dir;
    const int64_t n = 1000, d = 6;
    const FloatMatrix x = write_dataset(dir, "x.npy", n, d, fresh_seed());
    write_fvecs(dir / "x.fvecs", n, d, x.data.data());
    const std::string common = " --k 5 --niter 4 --cpu -q";
    CommandResult r = run_cli("kmeans " + quoted(dir / "x.npy") + common + " -o " +
                                      quoted(dir / "c.fvecs"), dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find("Iteration"), std::string::npos) << "-q prints no progress";
    r = run_cli("kmeans " + quoted(dir / "x.fvecs") + common + " -o " +
                        quoted(dir / "c.npy"), dir);
    ASSERT_EQ(r.status, 0) << r.err;
    const FloatMatrix from_npy = read_fvecs(dir / "c.fvecs");
    const FloatMatrix from_fvecs = read_npy(dir / "c.npy");
    EXPECT_EQ(from_npy.n, 5);
    EXPECT_EQ(from_npy.d, d);
    EXPECT_EQ(from_npy.data, from_fvecs.data);

    // .bvecs input: the same vectors rounded to bytes
    std::string bvecs;
    for (int64_t i = 0; i < n; i++) {
        bvecs += bytes_of(int32_t(d));
        for (int64_t j = 0; j < d; j++) {
            bvecs += char(uint8_t(i * 7 + j * 13));
        }
    }
    write_bytes(dir / "x.bvecs", bvecs);
    r = run_cli("kmeans " + quoted(dir / "x.bvecs") + common + " -o " +
                        quoted(dir / "b.npy"), dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(read_npy(dir / "b.npy").n, 5);
}

TEST(Cli, BadFilesExitWith1AndSayWhy) {
    ScratchDir dir;
    const float row[3] = {1, 2, 3};
    const float nan_row[3] = {1, NAN, 3};
    const std::string record = bytes_of(int32_t(3)) + bytes_of(row, 3);
    struct Case {
        const char* name;
        std::string bytes;
        const char* problem;
    };
    const Case cases[] = {
            {"magic.fvecs", bytes_of(int32_t(-7)) + bytes_of(row, 3),
             "is not a .fvecs file"},
            {"truncated.fvecs", record + record.substr(0, 9), "is truncated: record 1"},
            {"dimension.fvecs", record + bytes_of(int32_t(2)) + bytes_of(row, 2),
             "record 1 has dimension 2, record 0 has 3"},
            {"nan.fvecs", record + bytes_of(int32_t(3)) + bytes_of(nan_row, 3),
             "vector 1, component 1 is NaN"},
            {"magic.npy", record, "is not a .npy file"},
            {"empty.npy", "", "is not a .npy file"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        write_bytes(dir / c.name, c.bytes);
        const CommandResult r = run_cli(
                "kmeans " + quoted(dir / c.name) + " --k 2 -o " + quoted(dir / "c.npy"),
                dir);
        EXPECT_FAILS_WITH(r, 1, "faiss-flash kmeans: error: " + dir / c.name);
        EXPECT_NE(r.err.find(c.problem), std::string::npos) << r.err;
    }
    // a truncated .npy written by us
    write_dataset(dir, "x.npy", 50, 4, fresh_seed());
    const std::string npy = read_bytes(dir / "x.npy");
    write_bytes(dir / "cut.npy", npy.substr(0, npy.size() - 5));
    EXPECT_FAILS_WITH(run_cli("bench " + quoted(dir / "cut.npy") + " -o " +
                                      quoted(dir / "b.csv"), dir),
                      1, "cut.npy is truncated: shape (50, 4) of <f4 needs 800 bytes");
    EXPECT_FAILS_WITH(run_cli("kmeans " + quoted(dir / "missing.npy") + " --k 2 -o " +
                                      quoted(dir / "c.npy"), dir),
                      1, "cannot open");
    // more clusters than points: FAISS's own message
    EXPECT_FAILS_WITH(run_cli("kmeans " + quoted(dir / "x.npy") + " --k 60 -o " +
                                      quoted(dir / "c.npy"), dir),
                      1, "Number of training points (50) should be at least as large "
                         "as number of clusters (60)");
    EXPECT_FAILS_WITH(run_cli("kmeans " + quoted(dir / "x.npy") + " --k 2 -o " +
                                      quoted(dir / "c.txt"), dir),
                      1, "unknown output format");
    EXPECT_FALSE(std::filesystem::exists(dir / "c.npy"));
}

TEST(Cli, BenchComparesSideBySide) {
    ScratchDir dir;
    write_dataset(dir, "x.npy", 2000, 8, fresh_seed());
    const CommandResult r = run_cli(
            "bench " + quoted(dir / "x.npy") + " --k 4 --k 6 --niter 3 --cpu -o " +
                    quoted(dir / "b.csv"), dir);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    for (const char* text : {"FAISS ms/it", "flash ms/it", "speedup", "\nk=4 ", "\nk=6 "}) {
        EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
    }
    const std::string csv = read_bytes(dir / "b.csv");
    EXPECT_EQ(csv.rfind("case,engine,iteration,objective,ms,imbalance,nsplit\n", 0), 0u);
    EXPECT_EQ(count_of(csv, "\n"), 1u + 2 * 2 * 3) << csv;
    EXPECT_EQ(count_of(csv, "k=6,FAISS,"), 3u) << csv;
    EXPECT_EQ(count_of(csv, "k=6,faiss_flash (cpu),"), 3u) << csv;
}

TEST(Cli, TrainIndexWritesAnIndexFaissReads) {
    ScratchDir dir;
    const int64_t d = 8;
    write_dataset(dir, "train.npy", 3000, d, fresh_seed());
    const FloatMatrix base = write_dataset(dir, "base.fvecs", 500, d, fresh_seed());
    CommandResult r = run_cli("train-index " + quoted(dir / "train.npy") +
                                      " IVF8,Flat --cpu -o " + quoted(dir / "ivf.index") +
                                      " --add " + quoted(dir / "base.fvecs"), dir);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    std::unique_ptr<faiss::Index> index(faiss::read_index((dir / "ivf.index").c_str()));
    EXPECT_EQ(index->d, d);
    EXPECT_TRUE(index->is_trained);
    EXPECT_EQ(index->ntotal, 500);
    if (python_has("faiss")) {
        const std::string script = "import faiss\n"
                "i = faiss.read_index('" + dir / "ivf.index" + "')\n"
                "assert i.is_trained and i.ntotal == 500 and i.d == 8, (i.ntotal, i.d)\n"
                "assert faiss.extract_index_ivf(i).nlist == 8\n";
        write_bytes(dir / "check.py", script);
        r = run_command("/usr/bin/python3 " + quoted(dir / "check.py"), dir);
        EXPECT_EQ(r.status, 0) << r.err;
    }

    r = run_cli("train-index " + quoted(dir / "train.npy") + " IVF8,PQ2x4 -q -o " +
                        quoted(dir / "pq.index"), dir);
    ASSERT_EQ(r.status, 0) << r.err;
    index.reset(faiss::read_index((dir / "pq.index").c_str()));
    EXPECT_TRUE(index->is_trained);
    EXPECT_EQ(index->ntotal, 0);

    EXPECT_FAILS_WITH(run_cli("train-index " + quoted(dir / "train.npy") +
                                      " IVF8,Bogus -o " + quoted(dir / "x.index"), dir),
                      1, "faiss-flash train-index: error: ");
    write_dataset(dir, "base4.npy", 10, 4, fresh_seed());
    EXPECT_FAILS_WITH(run_cli("train-index " + quoted(dir / "train.npy") + " IVF8,Flat -o " +
                                      quoted(dir / "x.index") + " --add " +
                                      quoted(dir / "base4.npy"), dir),
                      1, "base4.npy has dimension 4, the training vectors 8");
    EXPECT_FALSE(std::filesystem::exists(dir / "x.index"));
}

TEST(Cli, DemoOnFashionMnist) {
    const std::string images =
            std::string(fashion_mnist_dir()) + "/train-images-idx3-ubyte.gz";
    if (!std::filesystem::exists(images)) {
        GTEST_SKIP() << images << " missing (dataset-fashion-mnist)";
    }
    ScratchDir dir;
    const bool plot = python_has("matplotlib");
    const CommandResult r = run_cli(
            "demo -o " + quoted(dir / "demo") +
                    " --k 16 --niter 3 --nq 50 --ivf IVF16,Flat --nprobe 4 --cpu -q" +
                    (plot ? "" : " --no-plot"), dir);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const std::string summary = read_bytes(dir / "demo/summary.txt");
    EXPECT_NE(r.out.find(summary), std::string::npos) << "the table is printed too";
    EXPECT_NE(summary.find("NMI vs classes"), std::string::npos) << summary;
    EXPECT_NE(summary.find("k-means, 70000 x 784, k=16"), std::string::npos) << summary;
    EXPECT_NE(summary.find("recall@10"), std::string::npos) << summary;
    const std::string csv = read_bytes(dir / "demo/kmeans_iterations.csv");
    EXPECT_EQ(count_of(csv, "\n"), 1u + 2 * 3) << csv;
    if (plot) {
        const std::string png = read_bytes(dir / "demo/kmeans_iterations.png");
        EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
    }
}

} // namespace

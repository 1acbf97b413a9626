// `faiss-flash train-index IN FACTORY -o OUT [--add BASE]`: index_factory +
// faiss_flash::train_index, optional add, faiss::write_index.

#include <faiss_flash/cli/commands.h>

#include <cstdio>
#include <memory>

#include <faiss/Index.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/utils.h>

#include <faiss_flash/cli/options.h>
#include <faiss_flash/cli/progress.h>
#include <faiss_flash/cli/table.h>
#include <faiss_flash/io/vector_formats.h>
#include <faiss_flash/train_index.h>

namespace faiss_flash {
namespace cli {

int train_index_command(const std::vector<std::string>& args) {
    std::string input, factory, output, base_path, metric = "l2";
    bool quiet = false;
    EngineOptions engine;
    ArgumentParser parser(
            "faiss-flash train-index",
            "Builds the FAISS index described by FACTORY (a faiss::index_factory\n"
            "string, e.g. \"IVF1024,PQ16\" or \"OPQ16,IVF4096,PQ16\"), trains it on the\n"
            "vectors of IN with faiss_flash::train_index (every k-means it needs runs\n"
            "in faiss_flash's engine), optionally adds the vectors of BASE, and writes\n"
            "it to OUT with faiss::write_index (readable by faiss.read_index).");
    parser.add_positional("IN", "training vectors (*.fvecs, *.bvecs, *.npy, "
                          "*idx3-ubyte[.gz])", &input);
    parser.add_positional("FACTORY", "faiss::index_factory string", &factory);
    parser.add_option("-o,--output", "OUT", "index file", &output,
                      Presence::Required);
    parser.add_option("--add", "BASE", "vectors to add after training", &base_path);
    parser.add_option("--metric", "l2|ip", "metric of the index", &metric);
    engine.add_to(parser);
    parser.add_flag("-q,--quiet", "no per-iteration progress lines", &quiet);
    if (!parser.parse(args)) {
        return 0;
    }
    FlashParameters params = engine.parameters();
    if (metric != "l2" && metric != "ip") {
        throw UsageError("--metric must be l2 or ip, got '" + metric + "'");
    }

    const FloatMatrix x = read_vectors(input);
    printf("%s: %ld training vectors of dimension %ld\n", input.c_str(),
           long(x.n), long(x.d));
    FloatMatrix base;
    if (!base_path.empty()) {
        // Read before training: a bad base file fails before the long part.
        base = read_vectors(base_path);
        FAISS_THROW_IF_NOT_FMT(
                base.d == x.d,
                "%s has dimension %ld, the training vectors %ld",
                base_path.c_str(),
                long(base.d),
                long(x.d));
    }
    std::unique_ptr<faiss::Index> index(faiss::index_factory(
            x.d,
            factory.c_str(),
            metric == "l2" ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT));

    ProgressPrinter progress(stdout, "faiss_flash");
    if (!quiet) {
        params.observer = &progress;
    }
    const double t0 = faiss::getmillisecs();
    train_index(index.get(), x.n, x.data.data(), params);
    const double train_s = (faiss::getmillisecs() - t0) / 1000;
    double add_s = 0;
    if (!base_path.empty()) {
        const double t1 = faiss::getmillisecs();
        index->add(base.n, base.data.data());
        add_s = (faiss::getmillisecs() - t1) / 1000;
    }
    faiss::write_index(index.get(), output.c_str());

    Table summary({"train-index", "summary"}, Table::Layout::KeyValue);
    summary.add_row({"index", format("%s, d=%ld, %s", factory.c_str(),
                                     long(x.d), metric.c_str())});
    summary.add_row({"training vectors", format("%s (%ld)", input.c_str(),
                                                long(x.n))});
    summary.add_row({"train time", format("%.2f s", train_s)});
    if (!base_path.empty()) {
        summary.add_row({"added", format("%s (%ld) in %.2f s", base_path.c_str(),
                                         long(base.n), add_s)});
    }
    summary.add_row({"ntotal", std::to_string(index->ntotal)});
    summary.add_row({"written", output});
    printf("\n");
    summary.print(stdout);
    return 0;
}

} // namespace cli
} // namespace faiss_flash

#include <faiss_flash/cli/progress.h>

namespace faiss_flash {
namespace cli {

ProgressPrinter::ProgressPrinter(FILE* out, std::string label)
        : out_(out), label_(std::move(label)) {}

void ProgressPrinter::on_iteration(const IterationProgress& p) {
    const faiss::ClusteringIterationStats& s = p.stats;
    if (p.redo == 0 && p.iteration == 0) {
        previous_time_s_ = 0; // a new run
    }
    const double iteration_ms = (s.time - previous_time_s_) * 1000;
    previous_time_s_ = s.time;
    const int done = p.redo * p.niter + p.iteration + 1;
    const int total = p.nredo * p.niter;
    const double eta_s = s.time / done * (total - done);
    std::string redo;
    if (p.nredo > 1) {
        redo = " redo " + std::to_string(p.redo + 1) + "/" +
                std::to_string(p.nredo);
    }
    fprintf(out_,
            "[%s]%s  Iteration %d (%.2f s, search %.2f s): objective=%g "
            "imbalance=%.3f nsplit=%d | %.1f ms, elapsed %.2f s, ETA %.2f s\n",
            label_.c_str(),
            redo.c_str(),
            p.iteration,
            s.time,
            s.time_search,
            p.objective,
            s.imbalance_factor,
            s.nsplit,
            iteration_ms,
            s.time,
            eta_s);
    fflush(out_);
}

} // namespace cli
} // namespace faiss_flash

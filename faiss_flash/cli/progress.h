// Progress of long k-means runs: one line per Lloyd iteration.

#pragma once

#include <cstdio>
#include <string>

#include <faiss_flash/IterationObserver.h>

namespace faiss_flash {
namespace cli {

/** Prints one line per iteration: FAISS's verbose fields (time, search
 * time, objective, imbalance, nsplit), then the iteration's own time and
 * the elapsed time and estimated time left of the run, e.g.
 *
 *   [faiss_flash]  Iteration 3 (0.62 s, search 0.55 s): objective=1.2e+10
 *   imbalance=1.012 nsplit=0 | 151.3 ms, elapsed 0.62 s, ETA 2.60 s
 *
 * (on one line). Unlike FAISS's verbose line it ends with '\n', so the
 * history stays on screen and in logs.
 */
class ProgressPrinter : public IterationObserver {
   public:
    /// @param label  prefix of every line, e.g. "faiss_flash"
    ProgressPrinter(FILE* out, std::string label);

    void on_iteration(const IterationProgress& progress) override;

   private:
    FILE* out_;
    std::string label_;
    double previous_time_s_ = 0; ///< stats.time of the previous iteration
};

} // namespace cli
} // namespace faiss_flash

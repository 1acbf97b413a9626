// The update's dispatch between its strategies (see .cuh).

#include "update_centroids.cuh"
#include "onchip_update.cuh"
#include "sort_inverse_update.cuh"

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

UpdateStrategy update_strategy(const UpdateArgs& args) {
    if (args.strategy == UpdateStrategy::SortInverse) {
        return UpdateStrategy::SortInverse;
    }
    const OnChipFit fit = onchip_fit(args);
    FAISS_THROW_IF_NOT_FMT(fit.fits() || args.strategy != UpdateStrategy::OnChip, "%s", fit.why_not.c_str());
    return fit.fits() ? UpdateStrategy::OnChip : UpdateStrategy::SortInverse;
}

size_t update_workspace_bytes(const UpdateArgs& args) {
    return update_strategy(args) == UpdateStrategy::OnChip
            ? onchip_workspace_bytes(args)
            : sort_inverse_workspace_bytes(args.batch, args.n, args.k, args.d);
}

void update_centroids(const UpdateArgs& args, void* workspace, cudaStream_t stream) {
    const int64_t rows = args.batch * args.n, clusters = args.batch * args.k;
    FAISS_THROW_IF_NOT_FMT(
            rows < (int64_t(1) << 32) && clusters < (int64_t(1) << 32),
            "centroid update: B·N = %ld points and B·K = %ld clusters must each be < 2^32",
            long(rows), long(clusters));
    if (update_strategy(args) == UpdateStrategy::OnChip) {
        onchip_update(args, workspace, stream);
    } else {
        sort_inverse_update(args, workspace, stream);
    }
}

} // namespace kernels
} // namespace faiss_flash

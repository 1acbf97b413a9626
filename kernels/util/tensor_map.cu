// The tensor maps' encoder, taken from the driver at first use.

#include "tensor_map.h"

#include <cuda_runtime_api.h>
#include <cudaTypedefs.h>

#include <faiss/impl/FaissAssert.h>

namespace faiss_flash {
namespace kernels {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q;
        const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
        FAISS_THROW_IF_NOT_MSG(err == cudaSuccess && q == cudaDriverEntryPointSuccess && p,
                               "TMA: cuTensorMapEncodeTiled not available in the driver");
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

} // namespace

CUtensorMap make_swizzled_row_map(
        const void* base,
        CUtensorMapDataType type,
        int64_t rows,
        int64_t ld,
        int64_t cols,
        int box_rows,
        const char* what) {
    CUtensorMap map;
    const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
    const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};
    const cuuint32_t box[2] = {64, cuuint32_t(box_rows)};
    const cuuint32_t elem_strides[2] = {1, 1};
    const CUresult r = tensor_map_encoder()(
            &map, type, 2, const_cast<void*>(base), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    FAISS_THROW_IF_NOT_FMT(r == CUDA_SUCCESS,
                           "%s: cuTensorMapEncodeTiled failed (%d) for %lld rows x %lld columns, %lld elements apart",
                           what, int(r), (long long)rows, (long long)cols, (long long)ld);
    return map;
}

} // namespace kernels
} // namespace faiss_flash

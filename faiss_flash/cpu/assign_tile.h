// CPU FlashAssign: nearest-centroid search that never materialises the N×K
// distance matrix. Point panels and centroid groups meet in a register tile;
// the distances of a tile are reduced into a running argmin while they are
// still in registers.
//
// Layers: assign_points (OpenMP over point blocks) -> assign_block (one
// block against all centroid chunks, per ISA) -> the register micro-kernel
// (16 points x 6 centroids, inner loop over d), in assign_tile.inl.

#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <faiss_flash/engine/LloydBackend.h>

namespace faiss_flash {
namespace cpu {

/// Tile shapes of the AVX2 micro-kernel. 12 accumulators (6 centroids x two
/// 8-lane registers of points) + 2 point registers + 1 broadcast = 15 of the
/// 16 ymm registers.
struct AssignTilePolicy {
    /// Points per panel: two 8-lane vectors; the points are the lanes, so
    /// the argmin over centroids needs no horizontal reduction.
    static constexpr int kPanelPoints = 16;
    /// Centroids per register step (broadcast operands).
    static constexpr int kGroupCentroids = 6;
    /// A centroid chunk is streamed from L2 once per panel: sized to half of
    /// a 1 MiB L2.
    static constexpr size_t kCentroidChunkBytes = 512 << 10;
    /// A block of points (packed panels) shares L2 with the chunk.
    static constexpr size_t kPointBlockBytes = 128 << 10;
};

/// Centroids in micro-kernel order: groups of kGroupCentroids interleaved
/// over the dimension (data[g][j][c]), and a per-centroid bias:
/// L2: ||c||^2 (FAISS's fvec_norms_L2sqr), IP: 0; +inf for the padding of
/// the last group, so padding never wins.
struct PackedCentroids {
    int64_t k = 0;
    int64_t d = 0;
    int64_t n_groups = 0;
    std::vector<float> data;
    std::vector<float> bias;
};

void pack_centroids(
        const float* centroids,
        int64_t k,
        int64_t d,
        Metric metric,
        PackedCentroids& packed);

/** Nearest centroid of each of n points (row-major n×d).
 *
 * L2: distance = max(0, (||x||^2 + ||c||^2) - 2<x,c>), FAISS's formula.
 * IP: the inner product, largest wins. Ties go to the lowest index.
 * x_norms is used for L2 only (may be nullptr for IP).
 */
void assign_points(
        const float* x,
        const float* x_norms,
        int64_t n,
        const PackedCentroids& centroids,
        Metric metric,
        int num_threads,
        int64_t* labels,
        float* distances);

/// One block of at most block_points(d) points, per instruction set.
/// scratch holds block_points(d) * d floats, 32-byte aligned.
using AssignBlockFn = void (*)(
        const float* x,
        const float* x_norms,
        int64_t rows,
        const PackedCentroids& centroids,
        Metric metric,
        float* scratch,
        int64_t* labels,
        float* distances);

int64_t block_points(int64_t d);

void assign_block_avx2(
        const float*,
        const float*,
        int64_t,
        const PackedCentroids&,
        Metric,
        float*,
        int64_t*,
        float*);
void assign_block_generic(
        const float*,
        const float*,
        int64_t,
        const PackedCentroids&,
        Metric,
        float*,
        int64_t*,
        float*);

} // namespace cpu
} // namespace faiss_flash

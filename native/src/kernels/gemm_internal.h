#pragma once
// Internal: the GEMM driver pieces that convolution reuses on its im2col tiles.
#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/variant_table.h"

namespace edge::kernels {

// colterm[n] = bias[n] + K * za * zb[n] + (flip - za) * colsum[n] for n < Np (see gemm.cc).
void gemm_column_terms(const PackedWeights& w, const VariantKernels& vk, int32_t a_zp_u8, const int32_t* bias,
                       int32_t* colterm);
// Rows [0, rows) of `a` against panels covering columns [n0, n1) (n0 a multiple of nr).
// rowsum: scratch of at least `rows` int32 (used when the weights have a zero point).
void gemm_block(const PackedWeights& w, const VariantKernels& vk, const uint8_t* a, size_t lda, int rows,
                uint8_t a_xor, const int32_t* colterm, int n0, int n1, const OutputSpec& out, void* c, size_t ldc,
                int32_t* rowsum, int32_t* acc_tile);
// acc_tile: scratch of rows * kMaxNr int32 (the K-blocked accumulators of one panel, vk.kblock).
constexpr int kMaxNr = 64;

// The uint8 view of a zero point: a_zp for uint8 activations, a_zp + 128 for int8 ones
// (whose bytes the kernels read xor 0x80).
inline int32_t u8_zero_point(QType t, int32_t zp) { return t == QType::U8 ? zp : zp + 128; }
inline uint8_t a_xor_for(QType t) { return t == QType::U8 ? 0 : 0x80; }
// Null when the output description is usable for `channels` output channels.
const char* check_output_spec(const OutputSpec& o, int channels);
// Rows per tile when splitting M across threads.
constexpr int kGemmTileRows = 96;
// Panels per column chunk when `row_tasks` row tiles are split across `threads` threads: all
// of them (one chunk) when there are rows enough, else chunks giving each thread about four
// tasks (a 7x7 map is one tile of 49 rows), so a thread that starts late or runs slow is evened
// out by the claiming; a chunk re-reads its tile's rows (in cache) and nothing more. Measured on
// MobileNetV2's 7x7 layers: 1 task per thread scaled 0.98-1.08x, 4 per thread 1.17-1.58x.
inline int gemm_panels_per_chunk(int panels, int row_tasks, int threads) {
  if (threads <= 1 || row_tasks >= 4 * threads || panels <= 1) return panels;
  const int n = std::min(panels, (4 * threads + row_tasks - 1) / row_tasks);
  return (panels + n - 1) / n;
}
// Rows per tile for M rows on `threads` threads: at most max_tile, the tiles equal (196
// rows, a 14x14 map: 66, 66 and 64 rather than 96, 96 and 4), and at least one tile per thread
// while each keeps `mr` rows or more. Splitting a small map's rows rather than only its
// columns keeps each thread on the pixels it computed in the layer before (the caller takes
// tiles from the front, workers from the back): a 7x7 layer's input then stays in the thread's
// own cache instead of crossing cores, and AVX-512's 64-column panels leave a 160-channel
// layer only 3 column chunks to share out.
inline int gemm_balanced_tile(int M, int threads, int mr, int max_tile = kGemmTileRows) {
  int tiles = (M + max_tile - 1) / max_tile;
  if (threads > 1 && tiles < threads) tiles = std::max(tiles, std::min(threads, M / std::max(mr, 1)));
  // A few tiles: a multiple of the threads, so no thread is left with one tile more than the
  // others (a 14x14 map's 3 tiles on 2 threads gave one thread two thirds of the step).
  if (threads > 1 && tiles > threads && tiles < 8 * threads && tiles % threads != 0) {
    const int up = (tiles + threads - 1) / threads * threads;
    if (M / up >= std::max(mr, 1)) tiles = up;
  }
  const int even = (M + std::max(tiles, 1) - 1) / std::max(tiles, 1);
  return std::max(1, std::min(max_tile, even));
}
inline size_t gemm_tile_scratch_bytes(int rows) {
  return arena_bytes(sizeof(int32_t) * rows) + arena_bytes(sizeof(int32_t) * rows * kMaxNr);
}

}  // namespace edge::kernels

#include "kernels/conv_rows.h"

#include <algorithm>

#include "kernels/gemm_internal.h"
#include "kernels/im2col.h"

namespace edge::kernels {

namespace {

// Output pixels of a row whose windows leave the image on the left or right take im2col rows;
// at most this many per side (a 7-wide kernel with padding 3 at stride 1 has 3).
constexpr int kMaxEdge = 8;

const VariantKernels& weights_kernels(const PackedWeights& w, const VariantKernels& vk) {
  return w.narrow() ? *avx2_q7_kernels() : vk;
}

size_t edge_cols_bytes(const PackedWeights& w) { return arena_bytes(static_cast<size_t>(kMaxEdge) * w.K() + kIm2colSlack); }
size_t span_of(const ConvShape& s) { return static_cast<size_t>(s.kernel_w) * s.C; }

}  // namespace

bool conv_rows_suits(const ConvShape& s, const PackedWeights& w, const VariantKernels& vk, const OutputSpec& out) {
  const VariantKernels& wk = weights_kernels(w, vk);
  if (s.groups != 1 || s.dilation_w != 1 || w.has_weight_zero_point()) return false;
  if (out.kind == OutputSpec::Kind::Int32 || wk.microkernel_q == nullptr) return false;
  if (span_of(s) % static_cast<size_t>(w.kgroup()) != 0 || w.K() != s.kernel_h * static_cast<int>(span_of(s))) return false;
  const InsideColumns in = inside_columns(s, s.kernel_w);
  return in.count() >= wk.mr && in.lo <= kMaxEdge && s.out_w() - in.hi <= kMaxEdge;
}

bool conv_rows_wins(const ConvShape& s, const PackedWeights& w, const VariantKernels& vk, const OutputSpec& out) {
  if (!conv_rows_suits(s, w, vk, out) || s.C > 48) return false;
  const InsideColumns in = inside_columns(s, s.kernel_w);
  return in.count() >= 4 * weights_kernels(w, vk).mr;
}

size_t conv_rows_scratch_bytes(const ConvShape& s, const PackedWeights& w, int threads) {
  // A zero-point kernel row, then per thread: im2col rows for one edge, their row sums and
  // the accumulator tile.
  return arena_bytes(span_of(s)) + static_cast<size_t>(std::max(threads, 1)) * (edge_cols_bytes(w) + gemm_tile_scratch_bytes(kMaxEdge));
}

Status conv_rows(const ConvRowsArgs& a, Arena& arena, ThreadPool* pool) {
  const ConvShape& s = *a.s;
  const PackedWeights& w = *a.w;
  const VariantKernels& wk = weights_kernels(w, *a.vk);
  const int OH = s.out_h(), OW = s.out_w(), H = s.H, W = s.W, C = s.C, kh = s.kernel_h, M = s.out_channels;
  const int span = static_cast<int>(span_of(s));
  const InsideColumns in = inside_columns(s, s.kernel_w);
  const int threads = pool_threads(pool);
  const size_t mark = arena.mark();
  auto* zrow = static_cast<uint8_t*>(arena.alloc(arena_bytes(span)));
  const size_t cols_stride = edge_cols_bytes(w), rs_stride = gemm_tile_scratch_bytes(kMaxEdge);
  auto* cols = static_cast<uint8_t*>(arena.alloc(cols_stride * threads));
  auto* tiles = static_cast<uint8_t*>(arena.alloc(rs_stride * threads));
  if (zrow == nullptr || cols == nullptr || tiles == nullptr) {
    arena.release_to(mark);
    return Status::Error("conv: the arena is smaller than conv_scratch_bytes()");
  }
  std::fill(zrow, zrow + span, a.pad);
  const OutputSpec& out = *a.out;
  const bool per_channel = out.scale_count > 1;
  const int rows_total = s.batch * OH;
  const int panels = (w.Np() + wk.nr - 1) / wk.nr;
  const int per_chunk = gemm_panels_per_chunk(panels, rows_total, threads);
  const int nchunks = (panels + per_chunk - 1) / per_chunk;
  const size_t lda = static_cast<size_t>(s.stride_w) * C;
  const size_t ldy = static_cast<size_t>(M);  // requantized output: one byte per element
  auto task = [&](int t, int thread) {
    const int row = t / nchunks, nc = t % nchunks;
    const int n = row / OH, oh = row % OH;
    const int n0 = nc * per_chunk * wk.nr, n1 = std::min(w.Np(), (nc + 1) * per_chunk * wk.nr);
    auto* rowsum = reinterpret_cast<int32_t*>(tiles + thread * rs_stride);
    auto* acc = reinterpret_cast<int32_t*>(tiles + thread * rs_stride + arena_bytes(sizeof(int32_t) * kMaxEdge));
    const size_t first_pixel = static_cast<size_t>(row) * OW;
    uint8_t* yrow = a.y + first_pixel * M;
    // The edges: im2col rows, then the GEMM on them.
    auto edge = [&](int c0, int c1) {
      if (c1 <= c0) return;
      uint8_t* e = cols + thread * cols_stride;
      im2col_rows(Im2colArgs{&s, a.x, 0, a.pad}, static_cast<int>(first_pixel) + c0, c1 - c0, e);
      gemm_block(w, *a.vk, e, w.K(), c1 - c0, a.x_xor, a.colterm, n0, n1, out, yrow + static_cast<size_t>(c0) * M, ldy,
                 rowsum, acc);
    };
    edge(0, in.lo);
    edge(in.hi, OW);
    // Kernel row ky of output pixel ow starts at input row ih0 + ky * dh, column ow * sw - pl.
    const int ih0 = oh * s.stride_h - s.pad_top;
    const uint8_t* image = a.x + static_cast<size_t>(n) * H * W * C;
    for (int ow = in.lo; ow < in.hi; ow += wk.mr) {
      const int r = std::min(wk.mr, in.hi - ow);
      const size_t col = static_cast<size_t>(ow * s.stride_w - s.pad_left) * C;
      for (int p = n0; p < n1; p += wk.nr) {
        const int width = std::min(wk.nr, w.Np() - p);
        const int valid = std::min(width, w.N() - p);
        const int8_t* panel = w.panel(p);
        const FusedFinish f{a.colterm + p, nullptr, nullptr, &out, out.scales + (per_channel ? p : 0), per_channel, valid,
                            yrow + static_cast<size_t>(ow) * M + p, ldy};
        for (int ky = 0; ky < kh; ++ky) {
          const int ih = ih0 + ky * s.dilation_h;
          const bool rows_in = ih >= 0 && ih < H;
          // Above or below the image every pixel reads the zero-point row (stride 0).
          const uint8_t* src = rows_in ? image + static_cast<size_t>(ih) * W * C + col : zrow;
          const size_t stride = rows_in ? lda : 0;
          const int8_t* block = panel + static_cast<size_t>(ky) * span * width;
          if (ky + 1 < kh) {
            wk.microkernel(r, src, stride, span, block, width, a.x_xor, acc, ky > 0);
          } else {
            wk.microkernel_q(r, src, stride, span, block, width, a.x_xor, acc, ky > 0, f);
          }
        }
      }
    }
  };
  parallel_for(pool, rows_total * nchunks, task);
  arena.release_to(mark);
  return Status::Ok();
}

}  // namespace edge::kernels

#pragma once
// Internal: the per-variant function table behind dispatch. Each gemm_<isa>.cc file fills one
// VariantKernels; files whose instruction set the compiler or target lacks return null.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/common.h"
#include "kernels/dispatch.h"

namespace edge::kernels {

struct ConvShape;
struct PoolShape;
struct EltwiseArgs;

// One run of the direct small-channel convolution (conv_direct.h) on a whole batch.
struct DirectConvArgs {
  const ConvShape* s;
  int OH, OW;            // s->out_h(), s->out_w() (ISA files call no inline header functions)
  int Mp;                // out_channels rounded up to 8
  const float* w;        // [KH][KW][C][Mp], centred weights as float
  const int32_t* bias;   // Mp values (zero past out_channels)
  const float* scales;   // Mp multipliers
  const uint8_t* x;      // NHWC u8
  int32_t x_zp, y_zp, lo, hi;
  uint8_t* y;            // NHWC u8, out_channels per pixel
  float* scratch;        // DirectConv::scratch_floats() floats
};

// The output stage of a micro-kernel call that finishes in registers (microkernel_q): row r of
// the tile is written to y + r * ldy as finish_row(sums of row r, valid, colterm, zb,
// rowsum[r], *out, scales, ...) would write it. out->kind is U8 or S8.
struct FusedFinish {
  const int32_t* colterm;  // width values (already offset to the panel's first column)
  const int32_t* zb;       // width weight zero points, or null when all are 0
  const int32_t* rowsum;   // rows values when zb is set
  const OutputSpec* out;
  const float* scales;     // offset to the panel's first column when per_channel
  bool per_channel;
  int valid;               // columns to store (<= width)
  uint8_t* y;
  size_t ldy;              // bytes between output rows
};

// One run of depthwise ks x ks (3 or 5) output pixels along an output row (dilation 1), all
// taps inside the rows given (padding rows point at a row of zero-point bytes; padded columns
// are the driver's). Output pixel p (< count) reads input columns p * stride + kx of rows[ky]:
// its sums are colterm[c] + sum_{ky,kx} (x ^ x_xor) * w[(ky * ks + kx) * C + c], finished as
// finish_row would (out->kind U8, S8 or Int32), written C elements per pixel from y.
struct DwRowArgs {
  int ks = 3;              // kernel size: 3 or 5
  const uint8_t* rows[5];  // input row ky < ks at the first output pixel's kx = 0 column, channel 0
  int count;               // output pixels
  int stride;              // input pixels between output pixels: 1 or 2
  int C;                   // channels: elements per input and output pixel
  int c_begin = 0, c_end = -1;  // the channels computed: [c_begin, c_end), c_end < 0 meaning C;
                                // c_begin a multiple of 16 (the SIMD blocks stay the same)
  const int32_t* w;        // [ks * ks][C] centred weights in [-128, 127] as int32
  uint8_t x_xor;
  const int32_t* colterm;  // C values: bias - x_zp * sum of the channel's weights
  const OutputSpec* out;
  void* y;
};

// Calls f(ks, sw, x) with a run's compile-time choices as std::integral_constant values: kernel
// size 3 or 5, stride 1 or 2, and whether int8 activations are xored (the SIMD dw_row files
// instantiate one loop per combination).
template <class F>
inline void dw_row_dispatch(const DwRowArgs& a, F&& f) {
  auto by_stride = [&](auto ks) {
    auto by_xor = [&](auto sw) {
      if (a.x_xor) f(ks, sw, std::true_type{});
      else f(ks, sw, std::false_type{});
    };
    if (a.stride == 1) by_xor(std::integral_constant<int, 1>{});
    else by_xor(std::integral_constant<int, 2>{});
  };
  if (a.ks == 5) by_stride(std::integral_constant<int, 5>{});
  else by_stride(std::integral_constant<int, 3>{});
}

// GEMM K blocks (VariantKernels::kblock), multiples of every variant's k step. Measured with
// the AVX-512 VNNI and AVX2 kernels on an AMD Zen 4 (32 KB L1), the engine's step profile, min
// of 10 runs, 256 against 4096: ResNet18 9.36 -> 8.94 ms, the YOLO-like detector 7.08 -> 6.83
// ms (AVX2 19.5 -> 19.1), MobileNetV2 2.42 -> 2.40 ms; 1024 and 8192 land between.
constexpr int kGemmKBlock = 256;
constexpr int kX86KBlock = 4096;

struct VariantKernels {
  Variant variant;
  // GEMM packing layout: panels of `nr` columns, the last one rounded up to `col_align`;
  // inside a panel, k-groups of `kgroup` bytes per column: [k / kgroup][column][kgroup].
  int nr, col_align, kgroup;
  // Rows the micro-kernel handles at once.
  int mr;
  // raw acc[r][j] = sum_k (a_u[r][k] - a_flip) * b[k][j] for r < rows (<= mr), j < width,
  // where a_u = a ^ a_xor (the uint8 view) and a_flip is 128 for kernels that multiply
  // signed by signed (dot product), else 0. acc has row stride `width`. With `accumulate` the
  // sums are added to acc's contents (K-blocking), else acc is overwritten.
  void (*microkernel)(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                      int32_t* acc, bool accumulate);
  int32_t a_flip;
  // y[j] = requantize(raw[j] + colterm[j] - (zb ? zb[j] * rowsum : 0)) for j < n, or the
  // int32 value itself when out.kind is Int32. scales already offset to column 0 of this row
  // segment (per_channel) or the single scale.
  void (*finish_row)(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                     const OutputSpec& out, const float* scales, void* y);
  // Depthwise, one output pixel: acc[c] = sum_t (x_t[c] ^ x_xor) * w_t[c] over an even number
  // of taps (padding and the odd tap point at a row of zero-point bytes). Weights come in tap
  // pairs, w[((t / 2) * C + c) * 2 + t % 2], so x86 can use vpmaddwd; the driver subtracts
  // zero_point * sum_t w_t[c] afterwards. Accumulators stay in registers across the taps.
  void (*dw_pixel)(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc);
  // The peak-rate loop: `iters` rounds of independent chains of the micro-kernel's
  // multiply-accumulate instruction; returns the int8 operations done (2 per MAC). Null for scalar.
  uint64_t (*peak_loop)(uint64_t iters, int32_t* sink);
  // Direct convolution for few input channels (conv_direct.h): every accumulator is an exact
  // integer in float32, requantized like finish_row.
  void (*direct_conv)(const DirectConvArgs& a);
  // y[i * y_stride] = saturate_u8(round_half_even(x[i] / scale) + zp), NaN -> zp (quantize.h).
  void (*quantize_u8)(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);
  // Max pooling 2x2, stride 2, no padding or dilation, on NHWC u8 (pool.h).
  void (*max_pool_2x2)(const PoolShape& s, const uint8_t* x, uint8_t* y);
  // Depthwise, one output pixel, with int8 weights in tap quads for u8 x s8 dot products
  // (null where the variant has none; pack_conv then keeps the tap-pair weights): the same
  // sums as dw_pixel over `taps` taps (padding taps point at the zero-point row), then finished
  // in registers exactly as finish_row(sums, C, colterm, null, 0, out, out.scales, y).
  // Weights (B = ceil(C / 64)), first the taps / 4 full quads, in the order byte unpacks leave
  // channels in within 128-bit lanes: w[((q * B + b) * 4 + s) * 64 + L * 16 + j * 4 + t] =
  // w_{4q+t}[64b + 16L + 4s + j]; then each of the taps % 4 single taps i (tap 4 * quads + i),
  // one int32 per channel holding the weight in its low byte:
  // w[((quads + i) * B + b) * 256 + 4 * c + 0] = w_{4 quads + i}[64b + c], other bytes 0.
  void (*dw_pixel_q8)(const uint8_t* const* x, int taps, const int8_t* w, int C, uint8_t x_xor,
                      const int32_t* colterm, const OutputSpec& out, void* y);
  // The last K block of `microkernel` (same arguments; acc is only read, when `accumulate`)
  // finished in registers as described by `f`, so the int32 sums never go through memory.
  // Null where the variant has none: the driver then runs microkernel + finish_row.
  void (*microkernel_q)(int rows, const uint8_t* a, size_t lda, int K, const int8_t* panel, int width, uint8_t a_xor,
                        const int32_t* acc, bool accumulate, const FusedFinish& f);
  // Depthwise 3x3 or 5x5 along a row of output pixels, each input vector loaded once per kernel
  // row and used for every output pixel that reads it (DwRowArgs); null where the variant has none.
  void (*dw_row)(const DwRowArgs& a);
  // Elements [begin, end) of a checked qadd (mul false) or qmul (mul true) (eltwise_span.h);
  // null where the baseline build serves (eltwise.cc).
  void (*eltwise)(const EltwiseArgs& e, size_t begin, size_t end, bool mul);
  // quantize_u8 of three planes into interleaved bytes, y[3 * i + c] (quantize.h
  // quantize_u8_planes3); null where three strided quantize_u8 calls serve.
  void (*quantize_u8_planes3)(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y);
  // K is run in blocks of up to this many (a multiple of kgroup): every block but the last
  // stores the tile's int32 sums and the next reloads them (`accumulate`), so a block costs
  // 2 x mr x nr / 16 vector moves and buys nothing if the panel streams from L2 as fast as the
  // multiplies take it. x86 keeps the whole K of every layer measured (kX86KBlock); ARM keeps
  // a 256 x nr block in L1 (kGemmKBlock), unmeasured on hardware.
  int kblock = kGemmKBlock;
};

// scalar_kernels(), avx2_kernels(), ...: one per variant (variants.h), null when not built in.
#define EDGE_X(Enum, name, rank) const VariantKernels* name##_kernels();
EDGE_KERNEL_VARIANTS(EDGE_X)
#undef EDGE_X

const VariantKernels* variant_kernels(Variant v);  // null when not built in
// The AVX2 variant's kernels for weights within 7 bits ([-64, 63]; gemm_avx2_q7.cc): the same
// nr, col_align and a_flip as avx2_kernels(), kgroup 4. Null when AVX2 is not built in.
const VariantKernels* avx2_q7_kernels();
const VariantKernels& active_kernels();

// The float32 requantization of one value; the SIMD versions perform the same operations:
// convert (round to nearest even), multiply, clamp to [lo - zp, hi - zp], round half to
// even to an integer, add zp.
inline int32_t requantize_scalar(int32_t acc, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float f = static_cast<float>(acc) * scale;
  const float flo = static_cast<float>(lo - zp), fhi = static_cast<float>(hi - zp);
  f = f < flo ? flo : f;
  f = f > fhi ? fhi : f;
  return static_cast<int32_t>(std::nearbyint(f)) + zp;
}

// Generic parts reused by the variant files.
void finish_row_scalar(const int32_t* raw, int n, const int32_t* colterm, const int32_t* zb, int32_t rowsum,
                       const OutputSpec& out, const float* scales, void* y);
void dw_pixel_scalar(const uint8_t* const* x, int taps, const int16_t* w, int C, uint8_t x_xor, int32_t* acc);
// The scalar references of the small-shape families (conv_direct.cc, quantize.cc, pool.cc) and
// their SIMD versions, shared by the variants of one instruction set (the VNNI tables use the
// AVX2+FMA ones, dot product the NEON ones). Each is defined only where its ISA is built.
void direct_conv_scalar(const DirectConvArgs& a);
void quantize_u8_scalar(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);
void max_pool_2x2_scalar(const PoolShape& s, const uint8_t* x, uint8_t* y);
void direct_conv_avx2(const DirectConvArgs& a);
void quantize_u8_avx2(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);
void eltwise_avx2(const EltwiseArgs& e, size_t begin, size_t end, bool mul);
void quantize_u8_planes3_avx2(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y);
// The same loops built for the baseline target (eltwise.cc), for variants without their own.
void eltwise_baseline(const EltwiseArgs& e, size_t begin, size_t end, bool mul);
void max_pool_2x2_avx2(const PoolShape& s, const uint8_t* x, uint8_t* y);
void direct_conv_neon(const DirectConvArgs& a);
void quantize_u8_neon(const float* x, size_t n, float scale, int32_t zp, uint8_t* y, size_t y_stride);
void quantize_u8_planes3_neon(const float* const planes[3], size_t n, float scale, int32_t zp, uint8_t* y);
void max_pool_2x2_neon(const PoolShape& s, const uint8_t* x, uint8_t* y);
void dw_row_avx2(const DwRowArgs& a);
void dw_row_avx512(const DwRowArgs& a);
void dw_row_neon(const DwRowArgs& a);

}  // namespace edge::kernels

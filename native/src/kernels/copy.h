#pragma once
// The copy family: data movement on u8 tensors (Concat, Split, Slice, Transpose, Pad) and the
// byte-wise Max/Min, with the change of scale a Concat or Max input may need done on the fly.
// The requantization is the float32 formula the 256-entry tables use (lut.h lut_quantize on
// the identity), so every variant gives exactly the scalar bytes.
#include <cstddef>
#include <cstdint>

namespace edge::kernels {

// y[i] = saturate_u8(round_half_even(((x[i] - in_zp) * in_scale) / out_scale) + out_zp), in
// float32 (the multiply, then the divide). x and y may be the same buffer.
void requantize_u8_row(const uint8_t* x, size_t n, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, uint8_t* y);
// The scalar formula for one byte (the reference every variant matches).
uint8_t requantize_u8_scalar(uint8_t x, float in_scale, int32_t in_zp, float out_scale, int32_t out_zp);

// y[j * ldy + i] = x[i * ldx + j] for i < rows, j < cols: a tiled 2-D byte transpose (the
// NCHW <-> NHWC move is this, once per image).
void transpose_u8(const uint8_t* x, size_t rows, size_t cols, size_t ldx, uint8_t* y, size_t ldy);

// y[i] = max(a[i], b[i]) (or min); any of the buffers may be the same.
void max_u8(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n);
void min_u8(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n);

// Internal: the SIMD rows, null when this build or target lacks them (copy_<isa>.cc).
using RequantRowFn = void (*)(const uint8_t*, size_t, float, int32_t, float, int32_t, uint8_t*);
RequantRowFn requantize_u8_row_avx2();
RequantRowFn requantize_u8_row_neon();

}  // namespace edge::kernels

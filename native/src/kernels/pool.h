#pragma once
// Pooling on quantized NHWC tensors [batch][H][W][C].
//  - max_pool: on raw quantized values (input and output share scale and zero point, as in
//    ONNX MaxPool on uint8/int8); padded positions are ignored.
//  - avg_pool: QLinearAveragePool semantics: y = round((sum(x - x_zp) * x_scale / count)
//    / y_scale) + y_zp computed as float(sum) * (x_scale / (y_scale * count)) in float32;
//    count excludes padding unless count_include_pad.
//  - global_avg_pool: QLinearGlobalAveragePool: the mean over H x W per channel.
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"
#include "kernels/thread_pool.h"

namespace edge::kernels {

struct PoolShape {
  int batch = 1, H = 0, W = 0, C = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  bool count_include_pad = false;
  int out_h() const { return (H + pad_top + pad_bottom - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1; }
  int out_w() const { return (W + pad_left + pad_right - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1; }
};
const char* check_pool_shape(const PoolShape& s);

Status max_pool(const PoolShape& s, const void* x, QType type, void* y, ThreadPool* pool = nullptr);
// Scratch: the int32 per-channel sums of one output pixel per thread.
size_t avg_pool_scratch_bytes(const PoolShape& s, int threads);
Status avg_pool(const PoolShape& s, const void* x, QType type, float x_scale, int32_t x_zp, float y_scale,
                int32_t y_zp, void* y, Arena& arena, ThreadPool* pool = nullptr);
// Scratch: none (each task keeps its channels' sums in registers); the arena is taken so every
// pooling kernel is called alike.
size_t global_avg_pool_scratch_bytes(int C, int threads);
Status global_avg_pool(int batch, int H, int W, int C, const void* x, QType type, float x_scale, int32_t x_zp,
                       float y_scale, int32_t y_zp, void* y, Arena& arena, ThreadPool* pool = nullptr);

// The classic CNN downsampling, max pooling 2x2 with stride 2, no padding or dilation, on
// NHWC u8, on the calling thread (byte maxima over whole channel rows): the active variant's
// max_pool_2x2 (scalar, AVX2, NEON), equal to ref::max_pool. Only for shapes that suit.
inline bool max_pool_2x2_suits(const PoolShape& s) {
  return s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_top == 0 && s.pad_left == 0 &&
         s.pad_bottom == 0 && s.pad_right == 0 && s.dilation_h == 1 && s.dilation_w == 1 && s.H >= 2 && s.W >= 2 &&
         s.C > 0 && s.batch > 0;
}
void max_pool_2x2(const PoolShape& s, const uint8_t* x, uint8_t* y);

namespace ref {
void max_pool(const PoolShape& s, const void* x, QType type, void* y);
void avg_pool(const PoolShape& s, const void* x, QType type, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
              void* y);
}  // namespace ref

}  // namespace edge::kernels

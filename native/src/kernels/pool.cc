#include "kernels/pool.h"

#include <algorithm>
#include <cmath>

#include "kernels/variant_table.h"

namespace edge::kernels {

namespace {
template <class T>
void max_pool_rows(const PoolShape& s, const T* x, T* y, int row_begin, int row_end) {
  const int OH = s.out_h(), OW = s.out_w(), C = s.C;
  for (int row = row_begin; row < row_end; ++row) {
    const int n = row / OH, oh = row % OH;
    for (int ow = 0; ow < OW; ++ow) {
      T* out = y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * C;
      bool first = true;
      for (int ky = 0; ky < s.kernel_h; ++ky) {
        const int ih = oh * s.stride_h - s.pad_top + ky * s.dilation_h;
        if (ih < 0 || ih >= s.H) continue;
        for (int kx = 0; kx < s.kernel_w; ++kx) {
          const int iw = ow * s.stride_w - s.pad_left + kx * s.dilation_w;
          if (iw < 0 || iw >= s.W) continue;
          const T* in = x + ((static_cast<size_t>(n) * s.H + ih) * s.W + iw) * C;
          if (first) {
            std::copy(in, in + C, out);
            first = false;
          } else {
            for (int c = 0; c < C; ++c) out[c] = std::max(out[c], in[c]);
          }
        }
      }
    }
  }
}

// Sum over the window of (x - x_zp) per channel; returns the element count.
template <class T>
int window_sum(const PoolShape& s, const T* x, int n, int oh, int ow, int32_t x_zp, int32_t* acc) {
  std::fill(acc, acc + s.C, 0);
  int count = 0;
  for (int ky = 0; ky < s.kernel_h; ++ky) {
    const int ih = oh * s.stride_h - s.pad_top + ky * s.dilation_h;
    for (int kx = 0; kx < s.kernel_w; ++kx) {
      const int iw = ow * s.stride_w - s.pad_left + kx * s.dilation_w;
      if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
      const T* in = x + ((static_cast<size_t>(n) * s.H + ih) * s.W + iw) * s.C;
      for (int c = 0; c < s.C; ++c) acc[c] += static_cast<int32_t>(in[c]) - x_zp;
      ++count;
    }
  }
  return count;
}

int divisor(const PoolShape& s, int oh, int ow, int count) {
  if (!s.count_include_pad) return count;
  // ONNX counts padded positions inside [-pad, size + pad) only.
  int h = 0, w = 0;
  for (int ky = 0; ky < s.kernel_h; ++ky) {
    const int ih = oh * s.stride_h - s.pad_top + ky * s.dilation_h;
    if (ih >= -s.pad_top && ih < s.H + s.pad_bottom) ++h;
  }
  for (int kx = 0; kx < s.kernel_w; ++kx) {
    const int iw = ow * s.stride_w - s.pad_left + kx * s.dilation_w;
    if (iw >= -s.pad_left && iw < s.W + s.pad_right) ++w;
  }
  return h * w;
}

template <class T>
void avg_pool_rows(const PoolShape& s, const T* x, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp, T* y,
                   int32_t* acc, int row_begin, int row_end) {
  const int OH = s.out_h(), OW = s.out_w();
  const int32_t lo = std::is_same<T, uint8_t>::value ? 0 : -128, hi = std::is_same<T, uint8_t>::value ? 255 : 127;
  for (int row = row_begin; row < row_end; ++row) {
    const int n = row / OH, oh = row % OH;
    for (int ow = 0; ow < OW; ++ow) {
      const int count = window_sum(s, x, n, oh, ow, x_zp, acc);
      const int d = std::max(divisor(s, oh, ow, count), 1);
      const float m = x_scale / (y_scale * static_cast<float>(d));
      T* out = y + ((static_cast<size_t>(n) * OH + oh) * OW + ow) * s.C;
      for (int c = 0; c < s.C; ++c) out[c] = static_cast<T>(requantize_scalar(acc[c], m, y_zp, lo, hi));
    }
  }
}

const char* check_scales(QType t, float xs, int32_t xz, float ys, int32_t yz) {
  if (!(xs > 0) || !(ys > 0) || !std::isfinite(xs) || !std::isfinite(ys)) return "pool: scales must be finite and positive";
  if (xz < qmin(t) || xz > qmax(t) || yz < qmin(t) || yz > qmax(t)) return "pool: zero points must lie in the type's range";
  return nullptr;
}
}  // namespace

const char* check_pool_shape(const PoolShape& s) {
  if (s.batch <= 0 || s.H <= 0 || s.W <= 0 || s.C <= 0) return "pool: batch, H, W and C must be positive";
  if (s.kernel_h <= 0 || s.kernel_w <= 0 || s.stride_h <= 0 || s.stride_w <= 0 || s.dilation_h <= 0 || s.dilation_w <= 0)
    return "pool: kernel, strides and dilations must be positive";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0) return "pool: pads must not be negative";
  if (s.pad_top >= s.dilation_h * (s.kernel_h - 1) + 1 || s.pad_bottom >= s.dilation_h * (s.kernel_h - 1) + 1 ||
      s.pad_left >= s.dilation_w * (s.kernel_w - 1) + 1 || s.pad_right >= s.dilation_w * (s.kernel_w - 1) + 1)
    return "pool: each pad must be smaller than the (dilated) kernel so every window sees the input";
  if (s.out_h() <= 0 || s.out_w() <= 0) return "pool: the kernel is larger than the padded input";
  return nullptr;
}

Status max_pool(const PoolShape& s, const void* x, QType type, void* y, ThreadPool* pool) {
  if (const char* e = check_pool_shape(s)) return Status::Error(e);
  if (x == nullptr || y == nullptr) return Status::Error("max_pool: x and y must not be null");
  const int rows = s.batch * s.out_h();
  auto task = [&](int r, int) {
    if (type == QType::U8) max_pool_rows(s, static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), r, r + 1);
    else max_pool_rows(s, static_cast<const int8_t*>(x), static_cast<int8_t*>(y), r, r + 1);
  };
  parallel_for(pool, rows, task);
  return Status::Ok();
}

void max_pool_2x2(const PoolShape& s, const uint8_t* x, uint8_t* y) { active_kernels().max_pool_2x2(s, x, y); }

void max_pool_2x2_scalar(const PoolShape& s, const uint8_t* x, uint8_t* y) {
  const int OH = s.H / 2, OW = s.W / 2, C = s.C;  // out_h(), out_w() for this shape
  const size_t row = static_cast<size_t>(s.W) * C;
  for (int n = 0; n < s.batch; ++n) {
    const uint8_t* xn = x + static_cast<size_t>(n) * s.H * row;
    for (int oh = 0; oh < OH; ++oh) {
      const uint8_t* r0 = xn + static_cast<size_t>(2 * oh) * row;
      const uint8_t* r1 = r0 + row;
      uint8_t* out = y + (static_cast<size_t>(n) * OH + oh) * OW * C;
      for (int ow = 0; ow < OW; ++ow) {
        const uint8_t* a = r0 + static_cast<size_t>(2 * ow) * C;
        const uint8_t* b = r1 + static_cast<size_t>(2 * ow) * C;
        uint8_t* o = out + static_cast<size_t>(ow) * C;
        for (int c = 0; c < C; ++c) {
          const uint8_t m0 = a[c] > a[c + C] ? a[c] : a[c + C];
          const uint8_t m1 = b[c] > b[c + C] ? b[c] : b[c + C];
          o[c] = m0 > m1 ? m0 : m1;
        }
      }
    }
  }
}

size_t avg_pool_scratch_bytes(const PoolShape& s, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * arena_bytes(sizeof(int32_t) * s.C);
}

Status avg_pool(const PoolShape& s, const void* x, QType type, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                void* y, Arena& arena, ThreadPool* pool) {
  if (const char* e = check_pool_shape(s)) return Status::Error(e);
  if (const char* e = check_scales(type, x_scale, x_zp, y_scale, y_zp)) return Status::Error(e);
  if (x == nullptr || y == nullptr) return Status::Error("avg_pool: x and y must not be null");
  const size_t mark = arena.mark();
  const size_t stride = arena_bytes(sizeof(int32_t) * s.C) / sizeof(int32_t);
  auto* acc = static_cast<int32_t*>(arena.alloc(sizeof(int32_t) * stride * pool_threads(pool)));
  if (acc == nullptr) return Status::Error("avg_pool: the arena is smaller than avg_pool_scratch_bytes()");
  auto task = [&](int r, int thread) {
    int32_t* a = acc + thread * stride;
    if (type == QType::U8)
      avg_pool_rows(s, static_cast<const uint8_t*>(x), x_scale, x_zp, y_scale, y_zp, static_cast<uint8_t*>(y), a, r, r + 1);
    else
      avg_pool_rows(s, static_cast<const int8_t*>(x), x_scale, x_zp, y_scale, y_zp, static_cast<int8_t*>(y), a, r, r + 1);
  };
  parallel_for(pool, s.batch * s.out_h(), task);
  arena.release_to(mark);
  return Status::Ok();
}

size_t global_avg_pool_scratch_bytes(int C, int threads) {
  (void)C;
  (void)threads;
  return 0;  // each task sums its channels in registers
}

namespace {
// The global mean of channels [c0, c1) of image n: int32 sums over the H x W pixels in locals the
// compiler keeps in vector registers (no aliasing through the shape struct), then requantized.
template <class T>
void global_avg_channels(const T* __restrict x, int HW, int C, int c0, int c1, int32_t x_zp, float m, int32_t y_zp,
                         T* __restrict y) {
  constexpr int kChunk = 256;
  const int32_t lo = std::is_same<T, uint8_t>::value ? 0 : -128, hi = std::is_same<T, uint8_t>::value ? 255 : 127;
  int32_t sums[kChunk];
  for (int b = c0; b < c1; b += kChunk) {
    const int n = std::min(kChunk, c1 - b);
    for (int c = 0; c < n; ++c) sums[c] = 0;
    for (int p = 0; p < HW; ++p) {
      const T* __restrict in = x + static_cast<size_t>(p) * C + b;
      for (int c = 0; c < n; ++c) sums[c] += in[c];
    }
    // sum(x - zp) = sum(x) - HW * zp: exact in int32, since global_avg_pool refuses maps of more
    // than 2^23 pixels (2^23 * 255 < 2^31).
    const int32_t bias = HW * x_zp;
    for (int c = 0; c < n; ++c) y[b + c] = static_cast<T>(requantize_scalar(sums[c] - bias, m, y_zp, lo, hi));
  }
}
}  // namespace

Status global_avg_pool(int batch, int H, int W, int C, const void* x, QType type, float x_scale, int32_t x_zp,
                       float y_scale, int32_t y_zp, void* y, Arena& arena, ThreadPool* pool) {
  (void)arena;
  PoolShape s;
  s.batch = batch;
  s.H = H;
  s.W = W;
  s.C = C;
  s.kernel_h = H;
  s.kernel_w = W;
  if (const char* e = check_pool_shape(s)) return Status::Error(e);
  if (const char* e = check_scales(type, x_scale, x_zp, y_scale, y_zp)) return Status::Error(e);
  if (x == nullptr || y == nullptr) return Status::Error("global_avg_pool: x and y must not be null");
  if (static_cast<int64_t>(H) * W > (int64_t(1) << 23)) return Status::Error("global_avg_pool: more than 2^23 pixels per channel would overflow the int32 sums");
  const int HW = H * W;
  // The same multiplier avg_pool_rows computes for a window of HW elements.
  const float m = x_scale / (y_scale * static_cast<float>(HW));
  // Tasks are runs of channels (multiples of 64, so no two threads write one cache line): a
  // map is one output row, which a split by rows would leave to one thread. Below 2^18 inputs
  // one thread does it all: MobileNetV2's 7x7x1280 takes 9 us alone and 12 us split in four.
  const int threads = pool_threads(pool);
  int per = C;
  if (threads > 1 && static_cast<int64_t>(batch) * HW * C >= (int64_t(1) << 18))
    per = std::max(64, ((C + 2 * threads - 1) / (2 * threads) + 63) / 64 * 64);
  const int chunks = (C + per - 1) / per;
  auto task = [&](int t, int) {
    const int n = t / chunks, c0 = (t % chunks) * per, c1 = std::min(C, c0 + per);
    const size_t img = static_cast<size_t>(n) * HW * C;
    if (type == QType::U8)
      global_avg_channels(static_cast<const uint8_t*>(x) + img, HW, C, c0, c1, x_zp, m, y_zp, static_cast<uint8_t*>(y) + static_cast<size_t>(n) * C);
    else
      global_avg_channels(static_cast<const int8_t*>(x) + img, HW, C, c0, c1, x_zp, m, y_zp, static_cast<int8_t*>(y) + static_cast<size_t>(n) * C);
  };
  parallel_for(pool, batch * chunks, task);
  return Status::Ok();
}

namespace ref {
void max_pool(const PoolShape& s, const void* x, QType type, void* y) {
  if (type == QType::U8) max_pool_rows(s, static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), 0, s.batch * s.out_h());
  else max_pool_rows(s, static_cast<const int8_t*>(x), static_cast<int8_t*>(y), 0, s.batch * s.out_h());
}
void avg_pool(const PoolShape& s, const void* x, QType type, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
              void* y) {
  std::vector<int32_t> acc(s.C);
  if (type == QType::U8)
    avg_pool_rows(s, static_cast<const uint8_t*>(x), x_scale, x_zp, y_scale, y_zp, static_cast<uint8_t*>(y), acc.data(), 0,
                  s.batch * s.out_h());
  else
    avg_pool_rows(s, static_cast<const int8_t*>(x), x_scale, x_zp, y_scale, y_zp, static_cast<int8_t*>(y), acc.data(), 0,
                  s.batch * s.out_h());
}
}  // namespace ref

}  // namespace edge::kernels

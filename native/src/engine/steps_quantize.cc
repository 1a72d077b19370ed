// The quantize family: float32 graph inputs to u8 and u8 outputs back to float32, with the
// NCHW <-> NHWC move at the graph boundary folded in (kernels/quantize.h).
#include "engine/step_builders.h"

#include <atomic>

namespace edge::engine {
namespace k = edge::kernels;

namespace {

class QuantizeStep : public Step {
 public:
  int in = 0, out = 0, N = 0, C = 0, HW = 0;
  float scale = 1;
  int32_t zp = 0;
  bool transpose = false;
  size_t count = 0;
  k::Status run(const RunContext& ctx) const override {
    const float* x = static_cast<const float*>(ctx.at(in));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    // Chunks of kChunk values per task: a 224x224x3 image is ~60 us on one core.
    constexpr size_t kChunk = 8192;
    if (!transpose) {
      const int chunks = static_cast<int>((count + kChunk - 1) / kChunk);
      k::parallel_for(ctx.pool, chunks, [&](int t, int) {
        const size_t first = static_cast<size_t>(t) * kChunk, n = std::min(kChunk, count - first);
        k::quantize_u8_strided(x + first, n, scale, zp, y + first, 1);
      });
      return k::Status::Ok();
    }
    // A task is a run of pixels in all channels, so tasks write disjoint output bytes (by
    // channel planes, two threads would write the same interleaved cache lines).
    const size_t hw = static_cast<size_t>(HW), pixels = std::max<size_t>(kChunk / std::max(C, 1), 256);
    const int per_image = static_cast<int>((hw + pixels - 1) / pixels);
    k::parallel_for(ctx.pool, N * per_image, [&](int t, int) {
      const int n = t / per_image;
      const size_t first = static_cast<size_t>(t % per_image) * pixels, len = std::min(pixels, hw - first);
      const float* plane0 = x + static_cast<size_t>(n) * C * hw + first;
      uint8_t* out = y + (static_cast<size_t>(n) * hw + first) * C;
      if (C == 3) {  // an RGB image: the variant's interleaving kernel
        const float* const planes[3] = {plane0, plane0 + hw, plane0 + 2 * hw};
        k::quantize_u8_planes3(planes, len, scale, zp, out);
        return;
      }
      for (int c = 0; c < C; ++c)
        k::quantize_u8_strided(plane0 + static_cast<size_t>(c) * hw, len, scale, zp, out + c, static_cast<size_t>(C));
    });
    return k::Status::Ok();
  }
};

class DequantizeStep : public Step {
 public:
  int in = 0, out = 0, N = 0, C = 0, HW = 0;
  float scale = 1;
  int32_t zp = 0;
  bool transpose = false;
  size_t count = 0;
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(in));
    float* y = static_cast<float*>(ctx.at(out));
    // Runs of kChunk values (a multiple of 16 floats, so tasks never share a cache line of y):
    // a detector's 84x2100 head output is ~40 us on one core.
    constexpr size_t kChunk = 8192;
    if (!transpose) {
      const int chunks = static_cast<int>((count + kChunk - 1) / kChunk);
      std::atomic<bool> failed{false};
      k::parallel_for(ctx.pool, chunks, [&](int t, int) {
        const size_t first = static_cast<size_t>(t) * kChunk, n = std::min(kChunk, count - first);
        if (!k::dequantize_linear(x + first, k::QType::U8, k::QuantLayout{1, 1, n}, &scale, &zp, 1, y + first).ok()) failed = true;
      });
      return failed ? k::Status::Error("dequantize: invalid arguments") : k::Status::Ok();
    }
    // NHWC -> NCHW: a task is a run of pixels in every channel plane.
    const float fz = static_cast<float>(zp);
    const size_t hw = static_cast<size_t>(HW), pixels = std::max<size_t>(kChunk / std::max(C, 1) / 16 * 16, 256);
    const int per_image = static_cast<int>((hw + pixels - 1) / pixels);
    k::parallel_for(ctx.pool, N * per_image, [&](int t, int) {
      const int n = t / per_image;
      const size_t first = static_cast<size_t>(t % per_image) * pixels, last = std::min(hw, first + pixels);
      for (size_t p = first; p < last; ++p) {
        const uint8_t* src = x + (static_cast<size_t>(n) * hw + p) * C;
        float* dst = y + static_cast<size_t>(n) * C * hw + p;
        for (int c = 0; c < C; ++c) dst[static_cast<size_t>(c) * hw] = (static_cast<float>(src[c]) - fz) * scale;
      }
    });
    return k::Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Step> build_quantize(const Fields& f, bool quantize) {
  const int in = f.tensor("input"), out = f.tensor("output");
  const TensorDesc& x = f.tensor_of(in, {quantize ? DType::F32 : DType::U8});
  const TensorDesc& y = f.tensor_of(out, {quantize ? DType::U8 : DType::F32});
  bool transpose = f.flag(quantize ? "nchwToNhwc" : "nhwcToNchw");
  const float scale = f.scale("scale");
  const int zp = f.zero_point("zeroPoint");
  int N = 0, C = 0, HW = 0;
  if (transpose) {
    f.tensor_of(in, {x.dtype}, 4);
    const auto& s = x.shape;
    // quantize: x is NCHW, y NHWC; dequantize: x is NHWC, y NCHW.
    if (quantize) {
      expect_shape(f, y, {s[0], s[2], s[3], s[1]}, "output");
      N = static_cast<int>(s[0]); C = static_cast<int>(s[1]); HW = static_cast<int>(s[2] * s[3]);
    } else {
      expect_shape(f, y, {s[0], s[3], s[1], s[2]}, "output");
      N = static_cast<int>(s[0]); C = static_cast<int>(s[3]); HW = static_cast<int>(s[1] * s[2]);
    }
  } else {
    f.check(element_count(x) == element_count(y), "input and output differ in element count");
  }
  if (transpose && (C == 1 || HW == 1)) transpose = false;  // the same bytes in either order
  auto fill = [&](auto step) {
    step->in = in; step->out = out; step->N = N; step->C = C; step->HW = HW;
    step->scale = scale; step->zp = zp; step->transpose = transpose;
    step->count = static_cast<size_t>(element_count(x));
    step->reads = {in}; step->writes = out;
    return std::unique_ptr<Step>(std::move(step));
  };
  if (quantize) return fill(std::make_unique<QuantizeStep>());
  return fill(std::make_unique<DequantizeStep>());
}

}  // namespace edge::engine

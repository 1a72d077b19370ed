#pragma once
// Shared vocabulary of the int8 kernel library: status, element types, the caller-owned
// scratch arena and the output (requantization) description used by GEMM, convolution,
// pooling and the elementwise ops.
//
// Conventions that hold for every kernel in this library:
//  - Tensors are dense row-major; images are NHWC (channels innermost). The engine converts
//    ONNX's NCHW at the graph boundary (or keeps NHWC throughout between quantized ops).
//  - No kernel allocates heap memory on the inference path. Scratch memory comes from an
//    Arena that the caller owns and sizes once at load with the *_scratch_bytes() functions.
//  - All pointers passed in are borrowed for the duration of the call only; nothing is kept.
//  - Quantized values follow the ONNX definitions: real = (q - zero_point) * scale;
//    rounding is half to even; results saturate to the type's range.
//  - Requantization multiplies the int32 accumulator by a float32 multiplier
//    (for GEMM: a_scale * b_scale / y_scale, computed by the caller in float32), rounds
//    half to even and adds the output zero point, as ONNX Runtime's MLAS does. Every variant
//    performs the same float32 operations in the same order, so all variants agree bit for bit.
#include <cstddef>
#include <cstdint>

namespace edge::kernels {

// An error the caller can show: `error` is a static sentence (never freed), null when ok.
struct Status {
  const char* error = nullptr;
  bool ok() const { return error == nullptr; }
  static Status Ok() { return {}; }
  static Status Error(const char* why) { return Status{why}; }
};

// Quantized element type of a tensor.
enum class QType : uint8_t { U8 = 0, S8 = 1 };
inline int32_t qmin(QType t) { return t == QType::U8 ? 0 : -128; }
inline int32_t qmax(QType t) { return t == QType::U8 ? 255 : 127; }
inline const char* qtype_name(QType t) { return t == QType::U8 ? "uint8" : "int8"; }

// Scratch memory handed in by the caller. The arena never owns or frees `base`; kernels
// take aligned slices with alloc() and the caller calls reset() between operations (the
// kernels themselves reset to the mark they started from before returning, so one arena can
// serve a whole plan). Not thread-safe: one arena per concurrently running operation.
class Arena {
 public:
  Arena() = default;
  Arena(void* base, size_t size) : base_(static_cast<uint8_t*>(base)), size_(size) {}
  // Returns null when the arena is too small (kernels then return a Status error).
  void* alloc(size_t bytes, size_t align = 64) {
    size_t at = (used_ + align - 1) & ~(align - 1);
    if (at + bytes > size_ || (base_ == nullptr && bytes != 0)) return nullptr;
    used_ = at + bytes;
    if (used_ > high_water_) high_water_ = used_;
    return base_ + at;
  }
  size_t mark() const { return used_; }
  void release_to(size_t mark) { used_ = mark; }
  void reset() { used_ = 0; }
  size_t size() const { return size_; }
  size_t high_water() const { return high_water_; }

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0, used_ = 0, high_water_ = 0;
};

// Bytes to reserve per arena slice so that alignment padding never makes a sized arena short.
inline size_t arena_bytes(size_t bytes) { return (bytes + 63) & ~size_t(63); }

// What an op produces from its int32 accumulators.
//  - kind Int32: raw int32 (MatMulInteger / ConvInteger); scales, zero point, clamp unused.
//  - kind U8/S8: y = clamp(round_half_even(acc * scale[c]) + zero_point, clamp_min, clamp_max)
//    where c is the output channel when scale_count > 1 (per-channel), else 0.
//    clamp_min/clamp_max are in the quantized output domain and must lie inside the type's
//    range; a fused ReLU is clamp_min = zero_point, a fused Clip(lo, hi) is
//    clamp_min = max(qmin, zp + round(lo / y_scale)) and likewise for hi.
struct OutputSpec {
  enum class Kind : uint8_t { Int32 = 0, U8 = 1, S8 = 2 } kind = Kind::U8;
  const float* scales = nullptr;  // borrowed; 1 or N (channels) values
  int scale_count = 1;
  int32_t zero_point = 0;
  int32_t clamp_min = 0, clamp_max = 255;

  static OutputSpec quantized(QType t, const float* scales, int count, int32_t zp) {
    OutputSpec o;
    o.kind = t == QType::U8 ? Kind::U8 : Kind::S8;
    o.scales = scales;
    o.scale_count = count;
    o.zero_point = zp;
    o.clamp_min = qmin(t);
    o.clamp_max = qmax(t);
    return o;
  }
  static OutputSpec int32() {
    OutputSpec o;
    o.kind = Kind::Int32;
    return o;
  }
};

}  // namespace edge::kernels

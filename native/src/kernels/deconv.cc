#include "kernels/deconv.h"

#include <algorithm>
#include <cstring>

#include "kernels/variant_table.h"

namespace edge::kernels {

const char* deconv_shape_error(const DeconvShape& s) {
  if (s.batch < 1 || s.H < 1 || s.W < 1 || s.C < 1 || s.M < 1 || s.KH < 1 || s.KW < 1) return "sizes must be positive";
  if (s.stride_h < 1 || s.stride_w < 1 || s.dil_h < 1 || s.dil_w < 1 || s.group < 1) return "strides, dilations and group must be positive";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0 || s.out_pad_h < 0 || s.out_pad_w < 0) return "pads must not be negative";
  if (s.out_pad_h >= std::max(s.stride_h, s.dil_h) || s.out_pad_w >= std::max(s.stride_w, s.dil_w)) return "output padding must be smaller than the stride or dilation";
  if (s.C % s.group || s.M % s.group) return "channels must divide by group";
  if (s.out_h() < 1 || s.out_w() < 1) return "the output is empty";
  if (static_cast<int64_t>(s.KH) * s.KW * (s.M / s.group) > (1 << 24) || s.C / s.group > 33025) return "kernel too large";
  return nullptr;
}

Status PackedDeconv::pack(const DeconvShape& s, const int8_t* w, std::unique_ptr<PackedDeconv>* out) {
  if (const char* e = deconv_shape_error(s)) return Status::Error(e);
  auto p = std::make_unique<PackedDeconv>();
  p->shape_ = s;
  const int Cg = s.C / s.group, Mg = s.M / s.group, KK = s.KH * s.KW;
  const int N = KK * Mg;
  std::vector<int8_t> b(static_cast<size_t>(Cg) * N);
  for (int g = 0; g < s.group; ++g) {
    // [C/g][M/g][KH][KW] -> [C/g][KH*KW][M/g]: K x N row-major, columns ordered (ky, kx, m).
    for (int ci = 0; ci < Cg; ++ci)
      for (int m = 0; m < Mg; ++m)
        for (int k = 0; k < KK; ++k) {
          b[static_cast<size_t>(ci) * N + k * Mg + m] = w[((static_cast<size_t>(g) * Cg + ci) * Mg + m) * KK + k];
        }
    WeightsSource src;
    src.data = b.data();
    src.K = Cg;
    src.N = N;
    std::unique_ptr<PackedWeights> pw;
    const Status st = pack_gemm_weights(src, &pw);
    if (!st.ok()) return st;
    p->groups_.push_back(std::move(pw));
  }
  *out = std::move(p);
  return Status::Ok();
}

size_t PackedDeconv::bytes() const {
  size_t n = 0;
  for (const auto& g : groups_) n += g->bytes();
  return n;
}

size_t deconv_scratch_bytes(const PackedDeconv& p, int threads) {
  const DeconvShape& s = p.shape();
  const size_t cols = static_cast<size_t>(s.H) * s.W * s.KH * s.KW * (s.M / s.group) * 4;
  const size_t acc = static_cast<size_t>(s.out_h()) * s.out_w() * s.M * 4;
  return arena_bytes(cols) + arena_bytes(acc) + gemm_scratch_bytes(p.group(0), s.H * s.W, threads);
}

namespace {

Status check_out(const DeconvShape& s, const OutputSpec& out) {
  if (out.kind == OutputSpec::Kind::Int32) return Status::Ok();
  if (out.kind != OutputSpec::Kind::U8) return Status::Error("conv_transpose: the output must be uint8 or int32");
  if (!out.scales || (out.scale_count != 1 && out.scale_count != s.M)) return Status::Error("conv_transpose: need 1 or M output scales");
  if (out.clamp_min < 0 || out.clamp_max > 255 || out.clamp_min > out.clamp_max) return Status::Error("conv_transpose: clamp outside [0, 255]");
  return Status::Ok();
}

void finish(const DeconvShape& s, const int32_t* acc, const int32_t* bias, const OutputSpec& out, void* out_ptr, size_t pixels) {
  if (out.kind == OutputSpec::Kind::Int32) {  // raw sums (plus the bias)
    auto* y = static_cast<int32_t*>(out_ptr);
    for (size_t p = 0; p < pixels; ++p)
      for (int m = 0; m < s.M; ++m) y[p * s.M + m] = acc[p * s.M + m] + (bias ? bias[m] : 0);
    return;
  }
  auto* y = static_cast<uint8_t*>(out_ptr);
  for (size_t p = 0; p < pixels; ++p)
    for (int m = 0; m < s.M; ++m) {
      const int32_t v = acc[p * s.M + m] + (bias ? bias[m] : 0);
      y[p * s.M + m] = static_cast<uint8_t>(
          requantize_scalar(v, out.scales[out.scale_count == 1 ? 0 : m], out.zero_point, out.clamp_min, out.clamp_max));
    }
}

}  // namespace

Status conv_transpose(const PackedDeconv& p, const uint8_t* x, int32_t x_zp, const int32_t* bias, const OutputSpec& out,
                      void* y, Arena& arena, ThreadPool* pool) {
  const DeconvShape& s = p.shape();
  if (!x || !y) return Status::Error("conv_transpose: null tensor");
  if (x_zp < 0 || x_zp > 255) return Status::Error("conv_transpose: input zero point outside [0, 255]");
  const Status oc = check_out(s, out);
  if (!oc.ok()) return oc;
  const int Cg = s.C / s.group, Mg = s.M / s.group, KK = s.KH * s.KW, N = KK * Mg;
  const int OH = s.out_h(), OW = s.out_w();
  const size_t HW = static_cast<size_t>(s.H) * s.W, OHW = static_cast<size_t>(OH) * OW;
  const size_t mark = arena.mark();
  auto* cols = static_cast<int32_t*>(arena.alloc(HW * N * 4));
  auto* acc = static_cast<int32_t*>(arena.alloc(OHW * s.M * 4));
  if (!cols || !acc) {
    arena.release_to(mark);
    return Status::Error("conv_transpose: scratch arena too small");
  }
  for (int n = 0; n < s.batch; ++n) {
    std::memset(acc, 0, OHW * s.M * 4);
    for (int g = 0; g < s.group; ++g) {
      GemmArgs a;
      a.M = static_cast<int>(HW);
      a.a = x + static_cast<size_t>(n) * HW * s.C + static_cast<size_t>(g) * Cg;
      a.lda = static_cast<size_t>(s.C);
      a.a_type = QType::U8;
      a.a_zero_point = x_zp;
      a.c = cols;
      a.out = OutputSpec::int32();
      const Status st = gemm(p.group(g), a, arena, pool);
      if (!st.ok()) {
        arena.release_to(mark);
        return st;
      }
      // col2im: every input pixel adds its KH x KW x Mg columns into the output (exact).
      for (int iy = 0; iy < s.H; ++iy)
        for (int ky = 0; ky < s.KH; ++ky) {
          const int oy = iy * s.stride_h - s.pad_top + ky * s.dil_h;
          if (oy < 0 || oy >= OH) continue;
          for (int ix = 0; ix < s.W; ++ix) {
            const int32_t* c = cols + (static_cast<size_t>(iy) * s.W + ix) * N + static_cast<size_t>(ky) * s.KW * Mg;
            for (int kx = 0; kx < s.KW; ++kx) {
              const int ox = ix * s.stride_w - s.pad_left + kx * s.dil_w;
              if (ox < 0 || ox >= OW) continue;
              int32_t* d = acc + (static_cast<size_t>(oy) * OW + ox) * s.M + static_cast<size_t>(g) * Mg;
              const int32_t* src = c + static_cast<size_t>(kx) * Mg;
              for (int m = 0; m < Mg; ++m) d[m] += src[m];
            }
          }
        }
    }
    finish(s, acc, bias, out, static_cast<uint8_t*>(y) + static_cast<size_t>(n) * OHW * s.M * (out.kind == OutputSpec::Kind::Int32 ? 4 : 1), OHW);
  }
  arena.release_to(mark);
  return Status::Ok();
}

namespace ref {
void conv_transpose(const DeconvShape& s, const uint8_t* x, int32_t x_zp, const int8_t* w, const int32_t* bias,
                    const OutputSpec& out, uint8_t* y) {
  const int Cg = s.C / s.group, Mg = s.M / s.group, OH = s.out_h(), OW = s.out_w();
  std::vector<int32_t> acc(static_cast<size_t>(OH) * OW * s.M);
  for (int n = 0; n < s.batch; ++n) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int iy = 0; iy < s.H; ++iy)
      for (int ix = 0; ix < s.W; ++ix)
        for (int ci = 0; ci < s.C; ++ci) {
          const int g = ci / Cg;
          const int32_t xv = x[((static_cast<size_t>(n) * s.H + iy) * s.W + ix) * s.C + ci] - x_zp;
          for (int m = 0; m < Mg; ++m)
            for (int ky = 0; ky < s.KH; ++ky)
              for (int kx = 0; kx < s.KW; ++kx) {
                const int oy = iy * s.stride_h - s.pad_top + ky * s.dil_h, ox = ix * s.stride_w - s.pad_left + kx * s.dil_w;
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                acc[(static_cast<size_t>(oy) * OW + ox) * s.M + g * Mg + m] += xv * w[((static_cast<size_t>(ci) * Mg + m) * s.KH + ky) * s.KW + kx];
              }
        }
    finish(s, acc.data(), bias, out, y + static_cast<size_t>(n) * OH * OW * s.M, static_cast<size_t>(OH) * OW);
  }
}
}  // namespace ref

}  // namespace edge::kernels

// Differential test of the engine-side loops (direct.cc) against the kernel library's scalar
// oracles, on random shapes: run natively and under qemu-aarch64 by scripts/test-engine-arm.sh.
#include "engine/direct.h"
#include "kernels/kernels.h"
#include <cstdio>
#include <random>
#include <vector>
using namespace edge;
int main() {
  std::mt19937 rng(7);
  int bad = 0, cases = 0;
  printf("variant %s\n", kernels::active_variant_name());
  for (int it = 0; it < 200; ++it) {
    kernels::ConvShape s;
    s.batch = 1 + rng() % 2; s.H = 3 + rng() % 12; s.W = 3 + rng() % 12; s.C = 1 + rng() % 4;
    s.out_channels = 1 + rng() % 32; s.kernel_h = 1 + rng() % 3; s.kernel_w = 1 + rng() % 3;
    s.stride_h = 1 + rng() % 2; s.stride_w = 1 + rng() % 2; s.dilation_h = 1 + rng() % 2; s.dilation_w = 1 + rng() % 2;
    s.pad_top = rng() % 2; s.pad_left = rng() % 2; s.pad_bottom = rng() % 2; s.pad_right = rng() % 2;
    if (kernels::check_conv_shape(s) || !engine::DirectConv::suits(s)) continue;
    ++cases;
    const int M = s.out_channels;
    std::vector<uint8_t> x(s.batch * s.H * s.W * s.C); for (auto& v : x) v = rng();
    std::vector<int8_t> w(M * s.C * s.kernel_h * s.kernel_w); for (auto& v : w) v = int(rng() % 255) - 127;
    std::vector<int32_t> bias(M); for (auto& v : bias) v = int(rng() % 20001) - 10000;
    std::vector<float> sc(M); for (auto& v : sc) v = 0.0001f + (rng() % 1000) * 1e-6f;
    const int zx = rng() % 256, zy = rng() % 256, lo = rng() % 40, hi = 215 + rng() % 41;
    std::vector<uint8_t> y1(s.batch * s.out_h() * s.out_w() * M), y2(y1.size());
    engine::DirectConv dc(s, w.data()); dc.set_channels(bias.data(), sc.data(), M);
    std::vector<float> scratch(dc.scratch_floats());
    dc.run(x.data(), zx, bias.data(), sc.data(), M, zy, lo, hi, y1.data(), scratch.data());
    kernels::OutputSpec o = kernels::OutputSpec::quantized(kernels::QType::U8, sc.data(), M, zy); o.clamp_min = lo; o.clamp_max = hi;
    kernels::ref::conv(s, x.data(), kernels::QType::U8, zx, w.data(), nullptr, 1, bias.data(), o, y2.data());
    for (size_t i = 0; i < y1.size(); ++i) if (y1[i] != y2[i]) { ++bad; printf("mismatch case %d at %zu: %d vs %d\n", it, i, y1[i], y2[i]); break; }
  }
  for (int it = 0; it < 50; ++it) {
    kernels::PoolShape p; p.batch = 1 + rng() % 2; p.H = 2 + rng() % 15; p.W = 2 + rng() % 15; p.C = 1 + rng() % 40;
    p.kernel_h = p.kernel_w = 2; p.stride_h = p.stride_w = 2;
    std::vector<uint8_t> x(p.batch * p.H * p.W * p.C); for (auto& v : x) v = rng();
    std::vector<uint8_t> y1(p.batch * p.out_h() * p.out_w() * p.C), y2(y1.size());
    engine::max_pool_2x2(p, x.data(), y1.data());
    kernels::ref::max_pool(p, x.data(), kernels::QType::U8, y2.data());
    if (y1 != y2) { ++bad; printf("maxpool mismatch %d\n", it); }
  }
  printf("%d conv cases, %d mismatches\n", cases, bad);
  return bad != 0;
}

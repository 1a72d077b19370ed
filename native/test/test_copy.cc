// The copy family (copy.h): requantized rows against the scalar formula, byte for byte, at every
// length around the SIMD block sizes and in place; the tiled transpose and Max/Min against
// plain loops; all in guarded buffers so a read or write past either end faults.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

void run_copy_tests(Rng& rng, int cases) {
  const std::vector<size_t> lengths = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257};
  for (int c = 0; c < cases / 2 + 20; ++c) {
    const size_t n = c < static_cast<int>(lengths.size()) ? lengths[c] : static_cast<size_t>(rng.uniform(0, 300));
    const float in_scale = std::ldexp(1.0f + rng.unit(), rng.uniform(-12, 2));
    // Output scales from much finer (saturating) to much coarser, and sometimes exactly equal.
    const float out_scale = rng.uniform(0, 4) == 0 ? in_scale : in_scale * std::ldexp(0.5f + rng.unit(), rng.uniform(-3, 3));
    const int32_t in_zp = rng.uniform(0, 255), out_zp = rng.uniform(0, 255);
    GuardedBuffer xb(n), yb(n);
    uint8_t* x = xb.as();
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<uint8_t>(rng.uniform(0, 255));
    std::vector<uint8_t> keep(x, x + n);
    requantize_u8_row(x, n, in_scale, in_zp, out_scale, out_zp, yb.as());
    size_t bad = n;
    for (size_t i = 0; i < n && bad == n; ++i) {
      if (yb.as()[i] != requantize_u8_scalar(x[i], in_scale, in_zp, out_scale, out_zp)) bad = i;
    }
    expect(bad == n, fmt("requantize_u8_row n=%zu scale %g->%g zp %d->%d: byte %zu is %d, want %d", n, in_scale, out_scale, in_zp, out_zp,
                         bad, bad < n ? yb.as()[bad] : 0, bad < n ? requantize_u8_scalar(x[bad], in_scale, in_zp, out_scale, out_zp) : 0));
    requantize_u8_row(x, n, in_scale, in_zp, out_scale, out_zp, x);  // in place
    expect(std::equal(x, x + n, yb.as()), fmt("requantize_u8_row in place n=%zu", n));
    // Equal parameters change nothing.
    requantize_u8_row(keep.data(), n, in_scale, in_zp, in_scale, in_zp, yb.as());
    expect(std::equal(keep.begin(), keep.end(), yb.as()), fmt("requantize_u8_row with equal parameters is a copy, n=%zu", n));
  }
  // Every byte at a few exact halfway points: (x - zp) * s / t = k + 0.5 rounds to even.
  {
    uint8_t all[256], got[256];
    for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
    requantize_u8_row(all, 256, 1.0f, 128, 2.0f, 128, got);
    bool ok = true;
    for (int i = 0; i < 256; ++i) {
      const int want = static_cast<int>(std::nearbyint((i - 128) / 2.0)) + 128;
      ok = ok && got[i] == want;
    }
    expect(ok, "requantize_u8_row rounds half to even (scale 1 -> 2)");
  }
  for (int c = 0; c < cases / 4 + 10; ++c) {
    const size_t rows = static_cast<size_t>(rng.uniform(1, 40)), cols = static_cast<size_t>(rng.uniform(1, 40));
    const size_t ldx = cols + static_cast<size_t>(rng.uniform(0, 3)), ldy = rows + static_cast<size_t>(rng.uniform(0, 3));
    GuardedBuffer xb(rows * ldx), yb(cols * ldy);
    for (size_t i = 0; i < rows * ldx; ++i) xb.as()[i] = static_cast<uint8_t>(rng.uniform(0, 255));
    std::memset(yb.as(), 0x5A, cols * ldy);
    transpose_u8(xb.as(), rows, cols, ldx, yb.as(), ldy);
    bool ok = true;
    for (size_t i = 0; i < rows; ++i)
      for (size_t j = 0; j < cols; ++j) ok = ok && yb.as()[j * ldy + i] == xb.as()[i * ldx + j];
    for (size_t j = 0; j < cols; ++j)
      for (size_t i = rows; i < ldy; ++i) ok = ok && yb.as()[j * ldy + i] == 0x5A;  // padding untouched
    expect(ok, fmt("transpose_u8 %zux%zu ldx %zu ldy %zu", rows, cols, ldx, ldy));
  }
  for (int c = 0; c < cases / 4 + 10; ++c) {
    const size_t n = static_cast<size_t>(rng.uniform(0, 200));
    GuardedBuffer ab(n), bb(n), yb(n);
    for (size_t i = 0; i < n; ++i) ab.as()[i] = static_cast<uint8_t>(rng.uniform(0, 255)), bb.as()[i] = static_cast<uint8_t>(rng.uniform(0, 255));
    max_u8(ab.as(), bb.as(), yb.as(), n);
    bool ok = true;
    for (size_t i = 0; i < n; ++i) ok = ok && yb.as()[i] == std::max(ab.as()[i], bb.as()[i]);
    min_u8(ab.as(), bb.as(), yb.as(), n);
    for (size_t i = 0; i < n; ++i) ok = ok && yb.as()[i] == std::min(ab.as()[i], bb.as()[i]);
    expect(ok, fmt("max_u8/min_u8 n=%zu", n));
  }
}

}  // namespace edge::test

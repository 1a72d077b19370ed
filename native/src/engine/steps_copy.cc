// The copy family (kernels/copy.h): one 'copy' op writes its output from rectangular regions of
// one or more inputs (Concat: one region per input; Split and Slice: one strided region, steps
// may be negative, or 0 to repeat an edge; Transpose: one region whose dimensions walk the input in another order; Pad:
// the output filled with the zero point's byte, then the input as one region), each region
// requantized on the fly when its input's scale or zero point differs from the output's. And
// element-wise 'max'/'min' with broadcasting, both inputs requantized to the output first
// (requantization is monotonic, so this is the maximum of the dequantized values, requantized).
#include <cstring>

#include "engine/step_builders.h"

namespace edge::engine {
namespace k = edge::kernels;

namespace {

constexpr size_t kMaxRank = 6;
constexpr size_t kChunk = 256;  // bytes gathered on the stack before a SIMD requantization
constexpr int64_t kSplitBytes = 16 << 10;  // a copy task moves at least this much

// A requantization is a function of the byte: a 256-entry table of the kernels' own formula
// (requantize_u8_scalar, which every variant's row function matches), so a Concat of NHWC maps
// requantizes its rows of a few dozen channels by table lookups instead of a float pass per row.
struct Requant {
  bool on = false;
  float in_scale = 1, out_scale = 1;
  int32_t in_zp = 0, out_zp = 0;
  k::Lut table{};
  void build() {
    for (int v = 0; v < 256; ++v) table.table[v] = k::requantize_u8_scalar(static_cast<uint8_t>(v), in_scale, in_zp, out_scale, out_zp);
  }
  void row(const uint8_t* x, size_t n, uint8_t* y) const {
    if (on) k::lut_row(table, x, y, n);
    else if (x != y) std::memcpy(y, x, n);
  }
};

// One region, dimensions merged where both sides are contiguous across them.
struct Region {
  int input = 0;
  int64_t src_base = 0, dst_base = 0;
  std::vector<int64_t> count, src_stride, dst_stride;  // elements; src strides may be negative
  Requant rq;
};

// Up to 64 bytes inline: two fixed-size moves that overlap in the middle (a library call per
// row of a few dozen channels cost more than the copy).
template <int B>
inline void move_pair(uint8_t* dst, const uint8_t* src, int64_t n) {
  std::memcpy(dst, src, B);
  std::memcpy(dst + n - B, src + n - B, B);
}
inline void copy_short(uint8_t* dst, const uint8_t* src, int64_t n) {
  if (n >= 32) move_pair<32>(dst, src, n);
  else if (n >= 16) move_pair<16>(dst, src, n);
  else if (n >= 8) move_pair<8>(dst, src, n);
  else if (n >= 4) move_pair<4>(dst, src, n);
  else
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Contiguous rows of at most 64 bytes (NHWC Concat and Split of a few dozen channels): inline
// moves, and the requantization table applied to up to kChunk gathered bytes at a time rather
// than one call per row.
void copy_short_rows(const Region& r, const uint8_t* x, uint8_t* y, size_t outer_dims, int64_t first, int64_t end) {
  const int64_t inner = r.count[outer_dims];
  const int64_t per = static_cast<int64_t>(kChunk) / inner;
  // An odometer over the outer dimensions with running offsets (locals: the byte stores may
  // alias the region's vectors, which would be reloaded per row).
  int64_t idx[kMaxRank] = {0, 0, 0, 0, 0, 0}, cnt[kMaxRank], ss[kMaxRank], ds[kMaxRank];
  for (size_t d = 0; d < outer_dims; ++d) cnt[d] = r.count[d], ss[d] = r.src_stride[d], ds[d] = r.dst_stride[d];
  int64_t s = r.src_base, t = r.dst_base;
  for (size_t d = outer_dims, rest = static_cast<size_t>(first); d-- > 0;) {
    idx[d] = static_cast<int64_t>(rest % static_cast<size_t>(cnt[d]));
    rest /= static_cast<size_t>(cnt[d]);
    s += idx[d] * ss[d], t += idx[d] * ds[d];
  }
  const bool rq = r.rq.on;
  uint8_t buf[kChunk];
  int64_t dst[kChunk];
  for (int64_t o = first; o < end;) {
    const int64_t nb = std::min(per, end - o);
    for (int64_t b = 0; b < nb; ++b, ++o) {
      if (rq) {
        copy_short(buf + b * inner, x + s, inner);
        dst[b] = t;
      } else {
        copy_short(y + t, x + s, inner);
      }
      for (size_t d = outer_dims; d-- > 0;) {
        s += ss[d], t += ds[d];
        if (++idx[d] < cnt[d]) break;
        s -= cnt[d] * ss[d], t -= cnt[d] * ds[d];
        idx[d] = 0;
      }
    }
    if (rq) {
      k::lut_row(r.rq.table, buf, buf, static_cast<size_t>(nb * inner));
      for (int64_t b = 0; b < nb; ++b) copy_short(y + dst[b], buf + b * inner, inner);
    }
  }
}

// The region's outer loop: the dimensions walked one inner run (or one 2-D swap) at a time.
struct Outer {
  bool swap = false;
  size_t dims = 0;
  int64_t total = 1;
};
Outer outer_of(const Region& r) {
  const size_t rank = r.count.size(), last = rank - 1;
  const int64_t inner = r.count[last], sin = r.src_stride[last], din = r.dst_stride[last];
  Outer o;
  // NCHW <-> NHWC and other 2-D swaps: the last two output dimensions read the input transposed.
  o.swap = rank >= 2 && din == 1 && r.src_stride[last - 1] == 1 && sin > 1 && r.dst_stride[last - 1] >= inner;
  o.dims = o.swap ? rank - 2 : rank - 1;
  for (size_t d = 0; d < o.dims; ++d) o.total *= r.count[d];
  return o;
}

// Copies outer iterations [first, end) of the region.
void copy_region(const Region& r, const uint8_t* x, uint8_t* y, int64_t first, int64_t end) {
  const size_t rank = r.count.size();
  const size_t last = rank - 1;
  const int64_t inner = r.count[last], sin = r.src_stride[last], din = r.dst_stride[last];
  const Outer ou = outer_of(r);
  const bool swap = ou.swap;
  const size_t outer_dims = ou.dims;
  if (!swap && sin == 1 && din == 1 && inner <= 64 && ou.total > 1) return copy_short_rows(r, x, y, outer_dims, first, end);
  int64_t idx[kMaxRank] = {0, 0, 0, 0, 0, 0};
  for (size_t d = outer_dims, rest = static_cast<size_t>(first); d-- > 0;) {
    idx[d] = static_cast<int64_t>(rest % static_cast<size_t>(r.count[d]));
    rest /= static_cast<size_t>(r.count[d]);
  }
  uint8_t buf[kChunk];
  for (int64_t o = first; o < end; ++o) {
    int64_t s = r.src_base, t = r.dst_base;
    for (size_t d = 0; d < outer_dims; ++d) s += idx[d] * r.src_stride[d], t += idx[d] * r.dst_stride[d];
    if (swap) {
      const int64_t rows = r.count[last - 1];
      k::transpose_u8(x + s, static_cast<size_t>(inner), static_cast<size_t>(rows), static_cast<size_t>(sin), y + t,
                      static_cast<size_t>(r.dst_stride[last - 1]));
      if (r.rq.on) {
        for (int64_t a = 0; a < rows; ++a) {
          uint8_t* row = y + t + a * r.dst_stride[last - 1];
          r.rq.row(row, static_cast<size_t>(inner), row);
        }
      }
    } else if (sin == 1 && din == 1) {
      r.rq.row(x + s, static_cast<size_t>(inner), y + t);
    } else {
      for (int64_t j0 = 0; j0 < inner; j0 += kChunk) {
        const int64_t n = std::min<int64_t>(kChunk, inner - j0);
        for (int64_t j = 0; j < n; ++j) buf[j] = x[s + (j0 + j) * sin];
        if (din == 1) {
          r.rq.row(buf, static_cast<size_t>(n), y + t + j0);
        } else {
          r.rq.row(buf, static_cast<size_t>(n), buf);
          for (int64_t j = 0; j < n; ++j) y[t + (j0 + j) * din] = buf[j];
        }
      }
    }
    for (size_t d = outer_dims; d-- > 0;) {
      if (++idx[d] < r.count[d]) break;
      idx[d] = 0;
    }
  }
}

class CopyStep : public Step {
 public:
  int out = 0;
  int fill = -1;
  size_t out_bytes = 0;
  std::vector<Region> regions;
  k::Status run(const RunContext& ctx) const override {
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    if (fill >= 0) std::memset(y, fill, out_bytes);
    for (const Region& r : regions) {
      // Regions in order (a Pad's region overwrites its fill); a big one is split across the pool
      // in runs of its outer iterations of at least kSplitBytes.
      const uint8_t* x = static_cast<const uint8_t*>(ctx.at(r.input));
      const Outer ou = outer_of(r);
      const int64_t bytes = ou.total * r.count.back() * (ou.swap ? r.count[r.count.size() - 2] : 1);
      const int64_t per_task = std::max<int64_t>(1, kSplitBytes * ou.total / std::max<int64_t>(bytes, 1));
      const int tasks = ctx.pool ? static_cast<int>(std::min<int64_t>((ou.total + per_task - 1) / per_task, 256)) : 1;
      if (tasks <= 1) {
        copy_region(r, x, y, 0, ou.total);
        continue;
      }
      k::parallel_for(ctx.pool, tasks, [&](int t, int) {
        copy_region(r, x, y, ou.total * t / tasks, ou.total * (t + 1) / tasks);
      });
    }
    return k::Status::Ok();
  }
};

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

Requant requant_of(const Fields& f, const std::vector<int>& flags, const std::vector<double>& scales, const std::vector<int>& zps, size_t i,
                   float out_scale, int out_zp) {
  Requant rq;
  if (!flags[i]) return rq;
  f.check(scales[i] > 0 && scales[i] < 1e30, "inScales must be positive scales");
  rq.on = true;
  rq.in_scale = static_cast<float>(scales[i]);
  rq.in_zp = zps[i];
  rq.out_scale = out_scale;
  rq.out_zp = out_zp;
  rq.build();
  return rq;
}

}  // namespace

std::unique_ptr<Step> build_copy(const Fields& f) {
  auto step = std::make_unique<CopyStep>();
  step->out = f.tensor("output");
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8, DType::S8});
  const size_t rank = y.shape.size();
  f.check(rank >= 1 && rank <= kMaxRank, "copy takes tensors of rank 1 to 6");
  const std::vector<int> inputs = f.ints("inputs", 0, 0, 1 << 30);
  const size_t R = inputs.size();
  f.check(R >= 1, "copy needs at least one input region");
  const int64_t big = int64_t(1) << 30;
  const std::vector<int> count = f.ints("count", R * rank, 1, big);
  const std::vector<int> start = f.ints("start", R * rank, 0, big);
  const std::vector<int> stepv = f.ints("step", R * rank, -big, big);
  const std::vector<int> at = f.ints("at", R * rank, 0, big);
  const std::vector<int> perm = f.ints("perm", R * rank, 0, static_cast<int64_t>(rank) - 1);
  const std::vector<int> requant = f.ints("requant", R, 0, 1);
  const bool any_rq = std::find(requant.begin(), requant.end(), 1) != requant.end();
  std::vector<double> in_scales;
  std::vector<int> in_zps;
  float out_scale = 1;
  int out_zp = 0;
  if (any_rq) {
    in_scales = f.numbers("inScales", R);
    in_zps = f.ints("inZeroPoints", R, 0, 255);
    out_scale = f.scale("outputScale");
    out_zp = f.zero_point("outputZeroPoint");
  }
  if (f.has("fill")) step->fill = f.integer("fill", 0, 255);
  const std::vector<int64_t> dst_strides = row_major_strides(y.shape);
  int64_t covered = 0;
  for (size_t i = 0; i < R; ++i) {
    f.check(inputs[i] >= 0 && static_cast<size_t>(inputs[i]) < f.tensor_count(), "inputs names a tensor that does not exist");
    const TensorDesc& x = f.tensor_of(inputs[i], {y.dtype}, rank);
    f.check(inputs[i] != step->out, "a copy cannot read its own output");
    const std::vector<int64_t> src_strides = row_major_strides(x.shape);
    Region r;
    r.input = inputs[i];
    std::vector<bool> seen(rank, false);
    int64_t n = 1;
    for (size_t d = 0; d < rank; ++d) {
      const size_t j = i * rank + d;
      const int p = perm[j];
      f.check(!seen[p], "perm must name every input dimension once in each region");
      seen[p] = true;
      const int64_t c = count[j], s0 = start[j], st = stepv[j], extent = x.shape[p];
      // A step of 0 repeats one element (edge padding); the bounds below still hold.
      const int64_t last = s0 + (c - 1) * st;
      f.check(s0 < extent && last >= 0 && last < extent, "region " + std::to_string(i) + " reads outside input dimension " + std::to_string(p));
      f.check(at[j] + c <= y.shape[d], "region " + std::to_string(i) + " writes outside output dimension " + std::to_string(d));
      r.src_base += s0 * src_strides[p];
      r.dst_base += at[j] * dst_strides[d];
      r.count.push_back(c);
      r.src_stride.push_back(st * src_strides[p]);
      r.dst_stride.push_back(dst_strides[d]);
      n *= c;
    }
    covered += n;
    // Merge dimension d into d + 1 where both sides continue contiguously (fewer, longer rows).
    for (size_t d = r.count.size() - 1; d-- > 0;) {
      if (r.src_stride[d] == r.src_stride[d + 1] * r.count[d + 1] && r.dst_stride[d] == r.dst_stride[d + 1] * r.count[d + 1]) {
        r.count[d + 1] *= r.count[d];
        r.count.erase(r.count.begin() + static_cast<long>(d));
        r.src_stride.erase(r.src_stride.begin() + static_cast<long>(d));
        r.dst_stride.erase(r.dst_stride.begin() + static_cast<long>(d));
      }
    }
    r.rq = requant_of(f, requant, in_scales, in_zps, i, out_scale, out_zp);
    step->regions.push_back(std::move(r));
    step->reads.push_back(inputs[i]);
  }
  // Without a fill the regions must write every output byte (no stale arena bytes leak out).
  f.check(step->fill >= 0 || covered == element_count(y), "the regions do not cover the output and no fill byte is given");
  step->out_bytes = static_cast<size_t>(element_count(y));
  step->writes = step->out;
  return step;
}

namespace {

class MaxMinStep : public Step {
 public:
  bool max = true;
  int a = 0, b = 0, out = 0;
  std::vector<int64_t> shape, a_stride, b_stride;  // output shape; input strides, 0 where broadcast
  Requant ra, rb;
  k::Status run(const RunContext& ctx) const override {
    const uint8_t* x = static_cast<const uint8_t*>(ctx.at(a));
    const uint8_t* z = static_cast<const uint8_t*>(ctx.at(b));
    uint8_t* y = static_cast<uint8_t*>(ctx.at(out));
    const size_t r = shape.size();
    const int64_t inner = shape[r - 1];
    int64_t total = 1;
    for (size_t d = 0; d + 1 < r; ++d) total *= shape[d];
    int64_t idx[kMaxRank] = {0, 0, 0, 0, 0, 0};
    uint8_t ta[kChunk], tb[kChunk];
    for (int64_t o = 0; o < total; ++o) {
      int64_t sa = 0, sb = 0;
      for (size_t d = 0; d + 1 < r; ++d) sa += idx[d] * a_stride[d], sb += idx[d] * b_stride[d];
      for (int64_t j0 = 0; j0 < inner; j0 += kChunk) {
        const int64_t n = std::min<int64_t>(kChunk, inner - j0);
        for (int64_t j = 0; j < n; ++j) ta[j] = x[sa + (j0 + j) * a_stride[r - 1]];
        for (int64_t j = 0; j < n; ++j) tb[j] = z[sb + (j0 + j) * b_stride[r - 1]];
        ra.row(ta, static_cast<size_t>(n), ta);
        rb.row(tb, static_cast<size_t>(n), tb);
        uint8_t* dst = y + o * inner + j0;
        if (max) k::max_u8(ta, tb, dst, static_cast<size_t>(n));
        else k::min_u8(ta, tb, dst, static_cast<size_t>(n));
      }
      for (size_t d = r - 1; d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    return k::Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Step> build_maxmin(const Fields& f, bool max) {
  auto step = std::make_unique<MaxMinStep>();
  step->max = max;
  step->a = f.tensor("a");
  step->b = f.tensor("b");
  step->out = f.tensor("output");
  const TensorDesc& y = f.tensor_of(step->out, {DType::U8});
  const size_t rank = y.shape.size();
  f.check(rank >= 1 && rank <= kMaxRank, "max/min take tensors of rank 1 to 6");
  const TensorDesc& a = f.tensor_of(step->a, {DType::U8}, rank);
  const TensorDesc& b = f.tensor_of(step->b, {DType::U8}, rank);
  f.check(step->a != step->out && step->b != step->out, "max/min cannot read their own output");
  const std::vector<int64_t> sa = row_major_strides(a.shape), sb = row_major_strides(b.shape);
  for (size_t d = 0; d < rank; ++d) {
    f.check(a.shape[d] == y.shape[d] || a.shape[d] == 1, "a must match the output or be 1 in dimension " + std::to_string(d));
    f.check(b.shape[d] == y.shape[d] || b.shape[d] == 1, "b must match the output or be 1 in dimension " + std::to_string(d));
    step->a_stride.push_back(a.shape[d] == 1 ? 0 : sa[d]);
    step->b_stride.push_back(b.shape[d] == 1 ? 0 : sb[d]);
  }
  step->shape = y.shape;
  const float out_scale = f.scale("outputScale");
  const int out_zp = f.zero_point("outputZeroPoint");
  auto rq = [&](const char* s, const char* z) {
    Requant r;
    r.in_scale = f.scale(s);
    r.in_zp = f.zero_point(z);
    r.out_scale = out_scale;
    r.out_zp = out_zp;
    r.on = !(r.in_scale == out_scale && r.in_zp == out_zp);
    if (r.on) r.build();
    return r;
  };
  step->ra = rq("aScale", "aZeroPoint");
  step->rb = rq("bScale", "bZeroPoint");
  step->reads = {step->a, step->b};
  step->writes = step->out;
  return step;
}

}  // namespace edge::engine

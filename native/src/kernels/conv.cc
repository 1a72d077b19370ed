// Convolution driver: chooses pointwise GEMM, im2col + GEMM or the direct depthwise kernel at
// packing time; the inner loops are the variant's GEMM micro-kernel and depthwise routine.
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>

#include "kernels/conv_rows.h"
#include "kernels/gemm_internal.h"
#include "kernels/im2col.h"

namespace edge::kernels {

namespace {
size_t out_elem_bytes(const OutputSpec& o) { return o.kind == OutputSpec::Kind::Int32 ? 4 : 1; }
// Up to 256 KB of im2col rows per tile (L2): each tile streams the whole packed weights once,
// so deep layers (ResNet's 3x3x512, K = 4608) want few, tall tiles.
int im2col_tile_rows(int Kg) { return std::clamp(262144 / std::max(Kg, 1), 8, kGemmTileRows); }
OutputSpec group_spec(const OutputSpec& o, int first_channel) {
  OutputSpec g = o;
  if (o.kind != OutputSpec::Kind::Int32 && o.scale_count > 1) g.scales = o.scales + first_channel;
  return g;
}
}  // namespace

const char* check_conv_shape(const ConvShape& s) {
  if (s.batch <= 0 || s.H <= 0 || s.W <= 0 || s.C <= 0) return "conv: batch, H, W and C must be positive";
  if (s.out_channels <= 0) return "conv: out_channels must be positive";
  if (s.kernel_h <= 0 || s.kernel_w <= 0) return "conv: kernel sizes must be positive";
  if (s.stride_h <= 0 || s.stride_w <= 0) return "conv: strides must be positive";
  if (s.dilation_h <= 0 || s.dilation_w <= 0) return "conv: dilations must be positive";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0) return "conv: pads must not be negative";
  if (s.groups <= 0 || s.C % s.groups != 0 || s.out_channels % s.groups != 0)
    return "conv: groups must divide both C and out_channels";
  if (s.H + s.pad_top + s.pad_bottom < s.dilation_h * (s.kernel_h - 1) + 1 ||
      s.W + s.pad_left + s.pad_right < s.dilation_w * (s.kernel_w - 1) + 1)
    return "conv: the (dilated) kernel is larger than the padded input";
  return nullptr;
}

size_t PackedConv::bytes() const {
  size_t b = dw_w_.size() * sizeof(int16_t) + dw_wsum_.size() * sizeof(int32_t) + dw_q8_.size() +
             dwr_w_.size() * sizeof(int32_t);
  for (const auto& w : group_w_) b += w->bytes();
  return b;
}

Status pack_conv(const ConvShape& s, const int8_t* w, const int32_t* w_zps, int w_zp_count, Variant variant,
                 std::unique_ptr<PackedConv>* out) {
  if (const char* e = check_conv_shape(s)) return Status::Error(e);
  if (w == nullptr) return Status::Error("pack_conv: weights are null");
  if (w_zp_count != 1 && w_zp_count != s.out_channels) return Status::Error("pack_conv: w_zp_count must be 1 or out_channels");
  if (!variant_supported(variant)) return Status::Error("pack_conv: this CPU or build cannot run the requested kernel variant");
  auto pc = std::unique_ptr<PackedConv>(new PackedConv());
  pc->shape_ = s;
  pc->variant_ = variant;
  const int Cg = s.C / s.groups, OCg = s.out_channels / s.groups, taps = s.kernel_h * s.kernel_w;
  auto zp_of = [&](int oc) { return w_zps ? w_zps[w_zp_count == 1 ? 0 : oc] : 0; };
  if (s.groups == s.C && s.out_channels == s.C) {
    pc->algo_ = PackedConv::Algo::Depthwise;
    const int pairs = (taps + 1) / 2;
    pc->dw_w_.assign(static_cast<size_t>(pairs) * s.C * 2, 0);
    pc->dw_wsum_.assign(s.C, 0);
    for (int c = 0; c < s.C; ++c) {
      const int32_t zp = zp_of(c);
      if (zp < -128 || zp > 127) return Status::Error("pack_conv: weight zero points must be in [-128, 127]");
      for (int t = 0; t < taps; ++t) {
        const int16_t v = static_cast<int16_t>(w[c * taps + t] - zp);
        pc->dw_w_[(static_cast<size_t>(t / 2) * s.C + c) * 2 + t % 2] = v;
        pc->dw_wsum_[c] += v;
      }
    }
    const VariantKernels* vk = variant_kernels(variant);
    bool fits8 = true;
    for (int c = 0; c < s.C && fits8; ++c)
      for (int t = 0; t < taps; ++t) {
        const int32_t v = w[c * taps + t] - zp_of(c);
        if (v < -128 || v > 127) { fits8 = false; break; }
      }
    // 5x5 rows only with 8+ inside pixels: on a 7x7 map (3 of 7) the row kernel's setup per
    // row cost more than it saved (AVX-512 7x7x576 20 -> 28 us, AVX2 51 -> 55 us).
    const int inside5 = inside_columns(s, 5).count();
    if (vk != nullptr && vk->dw_row != nullptr && fits8 && s.kernel_h == s.kernel_w &&
        (s.kernel_h == 3 || (s.kernel_h == 5 && inside5 >= 8)) && s.dilation_h == 1 && s.dilation_w == 1 &&
        (s.stride_w == 1 || s.stride_w == 2)) {
      pc->dwr_w_.resize(static_cast<size_t>(taps) * s.C);
      for (int c = 0; c < s.C; ++c)
        for (int t = 0; t < taps; ++t) pc->dwr_w_[static_cast<size_t>(t) * s.C + c] = w[c * taps + t] - zp_of(c);
    }
    if (vk != nullptr && vk->dw_pixel_q8 != nullptr && fits8) {
      // Full tap quads, then the remaining taps one by one (variant_table.h): a 3x3 kernel is two
      // quads and one single tap, not three quads with three zero taps.
      const int quads = taps / 4, singles = taps % 4, blocks = (s.C + 63) / 64;
      pc->dw_q8_.assign(static_cast<size_t>(quads + singles) * blocks * 256, 0);
      for (int c = 0; c < s.C; ++c) {
        const int b = c / 64, L = (c % 64) / 16, sub = (c % 16) / 4, j = c % 4;
        for (int t = 0; t < taps; ++t) {
          const int8_t v = static_cast<int8_t>(w[c * taps + t] - zp_of(c));
          if (t < 4 * quads)
            pc->dw_q8_[((static_cast<size_t>(t / 4) * blocks + b) * 4 + sub) * 64 + L * 16 + j * 4 + t % 4] = v;
          else
            pc->dw_q8_[(static_cast<size_t>(t / 4 + (t - 4 * quads)) * blocks + b) * 256 + 4 * (c % 64)] = v;
        }
      }
      std::vector<int16_t>().swap(pc->dw_w_);  // the tap pairs are not used then
    }
    *out = std::move(pc);
    return Status::Ok();
  }
  const bool pointwise = taps == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 &&
                         s.pad_bottom == 0 && s.pad_right == 0;
  pc->algo_ = pointwise ? PackedConv::Algo::Pointwise : PackedConv::Algo::Im2col;
  const int Kg = taps * Cg;
  std::vector<int8_t> reordered(static_cast<size_t>(OCg) * Kg);
  for (int g = 0; g < s.groups; ++g) {
    // ONNX order per output channel is [ci][ky][kx]; im2col rows of NHWC input are [ky][kx][ci].
    for (int o = 0; o < OCg; ++o) {
      const int8_t* src = w + static_cast<size_t>(g * OCg + o) * Kg;
      for (int ci = 0; ci < Cg; ++ci)
        for (int t = 0; t < taps; ++t) reordered[static_cast<size_t>(o) * Kg + t * Cg + ci] = src[ci * taps + t];
    }
    WeightsSource src;
    src.data = reordered.data();
    src.K = Kg;
    src.N = OCg;
    src.n_by_k = true;
    src.zero_points = w_zps ? w_zps + (w_zp_count == 1 ? 0 : g * OCg) : nullptr;
    src.zero_point_count = w_zp_count == 1 ? 1 : OCg;
    std::unique_ptr<PackedWeights> pw;
    Status st = pack_gemm_weights(src, variant, &pw);
    if (!st.ok()) return st;
    pc->group_w_.push_back(std::move(pw));
  }
  *out = std::move(pc);
  return Status::Ok();
}

size_t conv_scratch_bytes(const PackedConv& pc, int threads) {
  const ConvShape& s = pc.shape();
  threads = std::max(threads, 1);
  switch (pc.algo()) {
    case PackedConv::Algo::Depthwise:
      // zero-point row (a whole input row for dw_row), then per thread: accumulators and the tap pointers.
      return arena_bytes(pc.dw_row_weights().empty() ? s.C : static_cast<size_t>(s.W) * s.C) +
             arena_bytes(sizeof(int32_t) * s.C) +
             threads * (arena_bytes(sizeof(int32_t) * s.C) + arena_bytes(sizeof(void*) * (s.kernel_h * s.kernel_w + 4)));
    case PackedConv::Algo::Pointwise:
      return gemm_scratch_bytes(*pc.group_weights()[0], s.batch * s.H * s.W, threads);
    case PackedConv::Algo::Im2col: {
      const PackedWeights& w = *pc.group_weights()[0];
      const int T = im2col_tile_rows(w.K());
      // The colterm, then im2col tiles or the kernel-row path's scratch (conv_rows.h).
      return arena_bytes(sizeof(int32_t) * w.Np()) +
             std::max(threads * (arena_bytes(static_cast<size_t>(T) * w.K() + kIm2colSlack) + gemm_tile_scratch_bytes(T)),
                      conv_rows_scratch_bytes(s, w, threads));
    }
  }
  return 0;
}

namespace {
Status conv_impl(const PackedConv& pc, const ConvArgs& args, Arena& arena, ThreadPool* pool);
}  // namespace

Status conv(const PackedConv& pc, const ConvArgs& args, Arena& arena, ThreadPool* pool) {
  if (args.residual_add == nullptr ||
      (pc.algo() == PackedConv::Algo::Pointwise && pc.shape().groups == 1))
    return conv_impl(pc, args, arena, pool);  // none, or fused into the GEMM's tiles
  ConvArgs plain = args;
  plain.residual_add = nullptr;
  Status st = conv_impl(pc, plain, arena, pool);
  if (!st.ok()) return st;
  const ConvShape& s = pc.shape();
  EltwiseArgs e = *args.residual_add;
  e.a = e.y = args.y;
  e.count = static_cast<size_t>(s.batch) * s.out_h() * s.out_w() * s.out_channels;
  return qadd(e, pool);
}

namespace {
Status conv_impl(const PackedConv& pc, const ConvArgs& args, Arena& arena, ThreadPool* pool) {
  const ConvShape& s = pc.shape();
  if (args.x == nullptr || args.y == nullptr) return Status::Error("conv: x and y must not be null");
  if (args.x_zero_point < qmin(args.x_type) || args.x_zero_point > qmax(args.x_type))
    return Status::Error("conv: input zero point is outside the input type's range");
  if (const char* e = check_output_spec(args.out, s.out_channels)) return Status::Error(e);
  const VariantKernels& vk = *variant_kernels(pc.variant());
  const int Cg = s.C / s.groups, OCg = s.out_channels / s.groups;
  const int OH = s.out_h(), OW = s.out_w();
  const size_t esize = out_elem_bytes(args.out);
  const uint8_t x_xor = a_xor_for(args.x_type);
  const int32_t zx = u8_zero_point(args.x_type, args.x_zero_point);
  const auto* x = static_cast<const uint8_t*>(args.x);
  auto* y = static_cast<uint8_t*>(args.y);
  const int threads = pool_threads(pool);
  const size_t mark = arena.mark();
  auto too_small = [&] {
    arena.release_to(mark);
    return Status::Error("conv: the arena is smaller than conv_scratch_bytes()");
  };

  if (pc.algo() == PackedConv::Algo::Pointwise) {
    for (int g = 0; g < s.groups; ++g) {
      GemmArgs ga;
      ga.M = s.batch * s.H * s.W;
      ga.a = x + g * Cg;
      ga.lda = s.C;
      ga.a_type = args.x_type;
      ga.a_zero_point = args.x_zero_point;
      ga.bias = args.bias ? args.bias + g * OCg : nullptr;
      ga.c = y + static_cast<size_t>(g) * OCg * esize;
      ga.ldc = s.out_channels;
      ga.out = group_spec(args.out, g * OCg);
      ga.residual_add = args.residual_add;  // conv() passes it for one group only
      Status st = gemm(*pc.group_weights()[g], ga, arena, pool);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  if (pc.algo() == PackedConv::Algo::Depthwise) {
    const int taps = s.kernel_h * s.kernel_w, taps_even = (taps + 1) / 2 * 2, quads = (taps + 3) / 4;
    const bool q8 = !pc.dw_q8_weights().empty();
    const int slots = q8 ? quads * 4 : taps_even;
    const size_t stride = arena_bytes(sizeof(int32_t) * s.C) + arena_bytes(sizeof(void*) * (taps + 4));
    const bool row_kernel = !pc.dw_row_weights().empty();
    const int ks = s.kernel_w;  // the row kernel's size (3 or 5) when it runs
    const size_t zrow_bytes = row_kernel ? static_cast<size_t>(s.W) * s.C : s.C;
    auto* zrow = static_cast<uint8_t*>(arena.alloc(zrow_bytes));
    auto* zeros = static_cast<int32_t*>(arena.alloc(sizeof(int32_t) * s.C));
    auto* scratch = static_cast<uint8_t*>(arena.alloc(stride * threads));
    if (zrow == nullptr || zeros == nullptr || scratch == nullptr) return too_small();
    // The kernel sums raw x * w; subtracting zp * sum_t w here makes it sum (x - zp) * w.
    // Padding (and the odd tap) read a row of zero-point bytes, so they add zp * w - zp * w = 0.
    const int32_t* wsum = pc.dw_weight_sums().data();
    for (int c = 0; c < s.C; ++c)
      zeros[c] = static_cast<int32_t>(static_cast<uint32_t>(args.bias ? args.bias[c] : 0) -
                                      static_cast<uint32_t>(zx) * static_cast<uint32_t>(wsum[c]));
    std::memset(zrow, static_cast<uint8_t>(args.x_zero_point), zrow_bytes);
    // dw_row runs over the output columns whose taps are all inside the row: [ow_lo, ow_hi).
    const InsideColumns inside = row_kernel ? inside_columns(s, ks) : InsideColumns{};
    const int ow_lo = inside.lo, ow_hi = inside.hi;
    const int32_t* colterm = zeros;
    const int16_t* wdw = pc.dw_weights().data();
    const int8_t* w8 = pc.dw_q8_weights().data();
    // Tasks are output rows; with few rows (7x7 maps) each row is cut into column runs too, so
    // every thread has a share and the last task is short. With the row kernel, few rows and
    // 128+ channels, tasks are instead runs of 64+ channels over every row's interior, plus one
    // task per row for its border pixels: half-row runs of 2-3 pixels left the row kernel
    // reloading its weights for every few pixels (7x7x960 scaled 1.0-1.1x on 2 threads).
    const int rows_total = s.batch * OH;
    const bool by_channels = threads > 1 && rows_total < 4 * threads && ow_hi > ow_lo && s.C >= 128;
    const int cpc = std::max(64, ((s.C + 4 * threads - 1) / (4 * threads) + 63) / 64 * 64);
    const int cchunks = by_channels ? (s.C + cpc - 1) / cpc : 0;
    int col_chunks = 1;
    if (threads > 1 && rows_total < 4 * threads && !by_channels) col_chunks = std::min(OW, (4 * threads + rows_total - 1) / rows_total);
    const int cols_per = (OW + col_chunks - 1) / col_chunks;
    col_chunks = (OW + cols_per - 1) / cols_per;
    // dw_row's arguments for output pixels [r_lo, r_hi) of a row, channels [cb, ce).
    auto row_args = [&](int row, int r_lo, int r_hi, int cb, int ce) {
      const int n = row / OH, oh = row % OH, ih0 = oh * s.stride_h - s.pad_top;
      const uint8_t* const image = x + static_cast<size_t>(n) * s.H * s.W * s.C;
      DwRowArgs ra;
      ra.ks = ks;
      for (int ky = 0; ky < ks; ++ky) {
        const int ih = ih0 + ky;
        ra.rows[ky] = (ih < 0 || ih >= s.H ? zrow : image + static_cast<size_t>(ih) * s.W * s.C) +
                      static_cast<size_t>(r_lo * s.stride_w - s.pad_left) * s.C;
      }
      ra.count = r_hi - r_lo;
      ra.stride = s.stride_w;
      ra.C = s.C;
      ra.c_begin = cb;
      ra.c_end = ce;
      ra.w = pc.dw_row_weights().data();
      ra.x_xor = x_xor;
      ra.colterm = colterm;
      ra.out = &args.out;
      ra.y = y + ((static_cast<size_t>(n) * OH + oh) * OW + r_lo) * s.out_channels * esize;
      return ra;
    };
    auto task = [&](int t, int thread) {
      if (t < cchunks) {
        const int cb = t * cpc, ce = std::min(s.C, cb + cpc);
        for (int row = 0; row < rows_total; ++row) vk.dw_row(row_args(row, ow_lo, ow_hi, cb, ce));
        return;
      }
      t -= cchunks;
      const int row = t / col_chunks, c0 = (t % col_chunks) * cols_per, c1 = std::min(OW, c0 + cols_per);
      const int n = row / OH, oh = row % OH;
      int32_t* acc = reinterpret_cast<int32_t*>(scratch + thread * stride);
      const uint8_t** ptrs = reinterpret_cast<const uint8_t**>(scratch + thread * stride + arena_bytes(sizeof(int32_t) * s.C));
      // Locals: the pointer stores below would otherwise make the compiler reload s.* each time.
      const int H = s.H, W = s.W, C = s.C, kh = s.kernel_h, kw = s.kernel_w, sw = s.stride_w, pl = s.pad_left;
      const int dh = s.dilation_h, dw = s.dilation_w, ih0 = oh * s.stride_h - s.pad_top;
      const bool rows_inside = ih0 >= 0 && ih0 + (kh - 1) * dh < H;
      const uint8_t* const image = x + static_cast<size_t>(n) * H * W * C;
      uint8_t* out = y + (static_cast<size_t>(n) * OH + oh) * OW * s.out_channels * esize;
      const size_t out_step = static_cast<size_t>(s.out_channels) * esize;
      for (int t = taps; t < slots; ++t) ptrs[t] = zrow;
      // dw_row takes this task's share of [ow_lo, ow_hi) (unless the channel tasks have it);
      // the per-pixel loop the rest of [c0, c1).
      const int r_lo = std::max(ow_lo, c0), r_hi = std::min(ow_hi, c1);
      if (r_hi > r_lo && !by_channels) vk.dw_row(row_args(row, r_lo, r_hi, 0, C));
      out += static_cast<size_t>(c0) * out_step;
      for (int ow = c0; ow < c1; ++ow, out += out_step) {
        if (ow == r_lo && r_hi > r_lo) {
          out += static_cast<size_t>(r_hi - 1 - ow) * out_step;
          ow = r_hi - 1;
          continue;
        }
        const int iw0 = ow * sw - pl;
        if (rows_inside && iw0 >= 0 && iw0 + (kw - 1) * dw < W) {
          // Interior: every tap is the window's corner plus a fixed offset.
          const uint8_t* corner = image + (static_cast<size_t>(ih0) * W + iw0) * C;
          for (int ky = 0, t = 0; ky < kh; ++ky)
            for (int kx = 0; kx < kw; ++kx, ++t) ptrs[t] = corner + (static_cast<size_t>(ky) * dh * W + kx * dw) * C;
        } else {
          for (int ky = 0, t = 0; ky < kh; ++ky) {
            const int ih = ih0 + ky * dh;
            for (int kx = 0; kx < kw; ++kx, ++t) {
              const int iw = iw0 + kx * dw;
              ptrs[t] = (ih < 0 || ih >= H || iw < 0 || iw >= W) ? zrow : image + (static_cast<size_t>(ih) * W + iw) * C;
            }
          }
        }
        if (q8) {
          vk.dw_pixel_q8(ptrs, taps, w8, C, x_xor, colterm, args.out, out);
        } else {
          vk.dw_pixel(ptrs, taps_even, wdw, C, x_xor, acc);
          vk.finish_row(acc, C, colterm, nullptr, 0, args.out, args.out.scales, out);
        }
      }
    };
    parallel_for(pool, cchunks + rows_total * col_chunks, task);
    arena.release_to(mark);
    return Status::Ok();
  }

  const PackedWeights& w0 = *pc.group_weights()[0];
  const uint8_t pad_byte = static_cast<uint8_t>(args.x_zero_point);
  if (conv_rows_wins(s, w0, vk, args.out)) {
    // By kernel rows, straight from the input (conv_rows.h).
    auto* colterm = static_cast<int32_t*>(arena.alloc(sizeof(int32_t) * w0.Np()));
    if (colterm == nullptr) return too_small();
    gemm_column_terms(w0, vk, zx, args.bias, colterm);
    Status st = conv_rows(ConvRowsArgs{&s, &w0, &vk, x, x_xor, pad_byte, colterm, &args.out, y}, arena, pool);
    arena.release_to(mark);
    return st;
  }
  // Im2col: tiles of output pixels; each thread builds its tile's rows, then runs the GEMM.
  const int Kg = w0.K();
  // Tiles of equal size, one per thread at least: a 10x10 map (100 pixels) is 50 + 50, not 96 + 4.
  const int T = gemm_balanced_tile(s.batch * OH * OW, threads, vk.mr, im2col_tile_rows(Kg));
  auto* colterm = static_cast<int32_t*>(arena.alloc(sizeof(int32_t) * w0.Np()));
  const size_t cols_stride = arena_bytes(static_cast<size_t>(T) * Kg + kIm2colSlack);
  const size_t rs_stride = gemm_tile_scratch_bytes(T);
  auto* cols = static_cast<uint8_t*>(arena.alloc(cols_stride * threads));
  auto* rowsums = static_cast<uint8_t*>(arena.alloc(rs_stride * threads));
  if (colterm == nullptr || cols == nullptr || rowsums == nullptr) return too_small();
  const int pixels = s.batch * OH * OW;
  const int tiles = (pixels + T - 1) / T;
  // Few tiles (small images, deep layers): split the columns too, as gemm() does, so every
  // thread has work; each column chunk builds its tile's rows itself.
  const int panels = (w0.Np() + vk.nr - 1) / vk.nr;
  const int per_chunk = gemm_panels_per_chunk(panels, tiles, threads);
  const int nchunks = (panels + per_chunk - 1) / per_chunk;
  for (int g = 0; g < s.groups; ++g) {
    const PackedWeights& w = *pc.group_weights()[g];
    gemm_column_terms(w, vk, zx, args.bias ? args.bias + g * OCg : nullptr, colterm);
    const OutputSpec spec = group_spec(args.out, g * OCg);
    auto task = [&](int t, int thread) {
      const int tile = t / nchunks, nc = t % nchunks;
      const int p0 = tile * T, rows = std::min(T, pixels - p0);
      uint8_t* a = cols + thread * cols_stride;
      im2col_rows(Im2colArgs{&s, x, g, pad_byte}, p0, rows, a);
      const int n0 = nc * per_chunk * vk.nr, n1 = std::min(w.Np(), (nc + 1) * per_chunk * vk.nr);
      gemm_block(w, vk, a, Kg, rows, x_xor, colterm, n0, n1, spec,
                 y + (static_cast<size_t>(p0) * s.out_channels + g * OCg) * esize, s.out_channels,
                 reinterpret_cast<int32_t*>(rowsums + thread * rs_stride),
                 reinterpret_cast<int32_t*>(rowsums + thread * rs_stride + arena_bytes(sizeof(int32_t) * T)));
    };
    parallel_for(pool, tiles * nchunks, task);
  }
  arena.release_to(mark);
  return Status::Ok();
}
}  // namespace

namespace ref {
void conv(const ConvShape& s, const void* x, QType x_type, int32_t x_zp, const int8_t* w, const int32_t* w_zps,
          int w_zp_count, const int32_t* bias, const OutputSpec& out, void* y) {
  const int Cg = s.C / s.groups, OCg = s.out_channels / s.groups, OH = s.out_h(), OW = s.out_w();
  auto xv = [&](size_t i) -> int32_t {
    return x_type == QType::U8 ? static_cast<const uint8_t*>(x)[i] : static_cast<const int8_t*>(x)[i];
  };
  for (int n = 0; n < s.batch; ++n)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow)
        for (int oc = 0; oc < s.out_channels; ++oc) {
          const int g = oc / OCg;
          const int32_t zw = w_zps ? w_zps[w_zp_count == 1 ? 0 : oc] : 0;
          int64_t acc = 0;
          for (int ci = 0; ci < Cg; ++ci)
            for (int ky = 0; ky < s.kernel_h; ++ky)
              for (int kx = 0; kx < s.kernel_w; ++kx) {
                const int ih = oh * s.stride_h - s.pad_top + ky * s.dilation_h;
                const int iw = ow * s.stride_w - s.pad_left + kx * s.dilation_w;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int32_t xi = xv(((static_cast<size_t>(n) * s.H + ih) * s.W + iw) * s.C + g * Cg + ci);
                const int32_t wi = w[((static_cast<size_t>(oc) * Cg + ci) * s.kernel_h + ky) * s.kernel_w + kx];
                acc += static_cast<int64_t>(xi - x_zp) * (wi - zw);
              }
          const int32_t a = static_cast<int32_t>(acc + (bias ? bias[oc] : 0));
          const size_t o = ((static_cast<size_t>(n) * OH + oh) * OW + ow) * s.out_channels + oc;
          switch (out.kind) {
            case OutputSpec::Kind::Int32: static_cast<int32_t*>(y)[o] = a; break;
            case OutputSpec::Kind::U8:
              static_cast<uint8_t*>(y)[o] = static_cast<uint8_t>(
                  requantize(a, out.scales[out.scale_count > 1 ? oc : 0], out.zero_point, out.clamp_min, out.clamp_max));
              break;
            case OutputSpec::Kind::S8:
              static_cast<int8_t*>(y)[o] = static_cast<int8_t>(
                  requantize(a, out.scales[out.scale_count > 1 ? oc : 0], out.zero_point, out.clamp_min, out.clamp_max));
              break;
          }
        }
}
}  // namespace ref

}  // namespace edge::kernels

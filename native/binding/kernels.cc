// Node-API glue for the int8 kernels: argument conversion and sync/async execution only.
// Every call parses its arguments on the JS thread into a KernelJob (borrowing the typed
// arrays' memory and keeping them referenced), then either runs it at once or as async work
// on the libuv pool, settling a Promise. The TypeScript wrappers in agent/kernels/ validate
// values first; the checks here only guard memory safety (buffer lengths and types).
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"

namespace {
using namespace edge::kernels;

// ---- argument helpers ----------------------------------------------------------------
[[noreturn]] void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

struct Buf {
  void* data = nullptr;
  size_t bytes = 0, length = 0;
  napi_typedarray_type type = napi_uint8_array;
};

Buf typed(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, bool allow_null = false) {
  Napi::Env env = info.Env();
  if (allow_null && (info[i].IsNull() || info[i].IsUndefined())) return Buf{};
  if (!info[i].IsTypedArray()) type_error(env, std::string(fn) + ": " + name + " must be a typed array");
  Napi::TypedArray t = info[i].As<Napi::TypedArray>();
  Buf b;
  b.type = t.TypedArrayType();
  b.length = t.ElementLength();
  b.bytes = t.ByteLength();
  b.data = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  return b;
}
Buf typed_of(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name, napi_typedarray_type want,
             const char* want_name, bool allow_null = false) {
  Buf b = typed(info, i, fn, name, allow_null);
  if (b.data != nullptr && b.type != want) type_error(info.Env(), std::string(fn) + ": " + name + " must be a " + want_name);
  return b;
}
QType qtype_of(Napi::Env env, const Buf& b, const char* fn, const char* name) {
  if (b.type == napi_uint8_array) return QType::U8;
  if (b.type == napi_int8_array) return QType::S8;
  type_error(env, std::string(fn) + ": " + name + " must be a Uint8Array or Int8Array");
}
double num(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsNumber()) type_error(info.Env(), std::string(fn) + ": " + name + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
int32_t int32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return static_cast<int32_t>(num(info, i, fn, name));
}
void need(Napi::Env env, bool ok, const std::string& msg) {
  if (!ok) throw Napi::RangeError::New(env, msg);
}

// ---- the shared intra-op pool (its sizing and busy rule: kernels/thread_pool.h) ----------
SharedPool g_pool;

template <class F>
Status with_pool(F&& fn) {
  return g_pool.run(std::forward<F>(fn));
}

// Scratch grows once per thread and is reused (the arena itself never allocates).
Arena scratch_arena(size_t bytes) {
  thread_local std::vector<uint8_t> mem;
  if (mem.size() < bytes + 64) mem.resize(bytes + 64);
  return Arena(mem.data(), mem.size());
}

// ---- jobs ------------------------------------------------------------------------------
struct KernelJob {
  virtual ~KernelJob() = default;
  virtual Status run() = 0;
  std::vector<Napi::Reference<Napi::Value>> keep;
  void hold(const Napi::CallbackInfo& info) {
    for (size_t i = 0; i < info.Length(); ++i)
      if (info[i].IsObject()) keep.push_back(Napi::Persistent(info[i]));
  }
};

class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, std::unique_ptr<KernelJob> job)
      : Napi::AsyncWorker(env, "edge-kernels"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    Status st = job_->run();
    if (!st.ok()) SetError(st.error);
  }
  void OnOK() override {
    job_.reset();
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& e) override {
    job_.reset();
    deferred_.Reject(e.Value());
  }

 private:
  std::unique_ptr<KernelJob> job_;
  Napi::Promise::Deferred deferred_;
};

// Sync: run now, throw on error. Async: queue, return a Promise.
Napi::Value dispatch(const Napi::CallbackInfo& info, std::unique_ptr<KernelJob> job, bool async) {
  Napi::Env env = info.Env();
  if (!async) {
    Status st = job->run();
    if (!st.ok()) throw Napi::Error::New(env, st.error);
    return env.Undefined();
  }
  job->hold(info);
  auto* w = new JobWorker(env, std::move(job));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}
bool async_flag(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean(); }

// Packed weights live in JS as an External; the finalizer frees them with the JS object.
template <class T>
T* external(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (!info[i].IsExternal()) type_error(info.Env(), std::string(fn) + ": the first argument must be packed weights");
  return info[i].As<Napi::External<T>>().Data();
}
template <class T>
Napi::Value wrap(Napi::Env env, std::unique_ptr<T> p, size_t bytes) {
  // Tell V8 how much native memory the handle keeps alive, and give it back when collected.
  const int64_t n = static_cast<int64_t>(bytes);
  auto ext = Napi::External<T>::New(env, p.release(), [n](Napi::Env e, T* t) {
    delete t;
    Napi::MemoryManagement::AdjustExternalMemory(e, -n);
  });
  Napi::MemoryManagement::AdjustExternalMemory(env, n);
  return ext;
}

OutputSpec output_spec(const Napi::CallbackInfo& info, const Buf& out, const Buf& scales, size_t i, int channels,
                       const char* fn) {
  Napi::Env env = info.Env();
  OutputSpec o;
  if (out.type == napi_int32_array) return OutputSpec::int32();
  const QType t = qtype_of(env, out, fn, "output");
  need(env, scales.data != nullptr && (scales.length == 1 || scales.length == static_cast<size_t>(channels)),
       std::string(fn) + ": scales must hold 1 or " + std::to_string(channels) + " values for a quantized output");
  o = OutputSpec::quantized(t, static_cast<const float*>(scales.data), static_cast<int>(scales.length),
                            int32(info, i, fn, "outputZeroPoint"));
  o.clamp_min = int32(info, i + 1, fn, "clampMin");
  o.clamp_max = int32(info, i + 2, fn, "clampMax");
  return o;
}

// ---- functions -------------------------------------------------------------------------
Napi::Value KernelsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("variant", active_variant_name());
  Napi::Array vs = Napi::Array::New(env);
  uint32_t n = 0;
  for (Variant v : supported_variants()) vs.Set(n++, variant_name(v));
  o.Set("supported", vs);
  o.Set("cpu", cpu_features_string());
  o.Set("threads", g_pool.threads());
  const char* forced = variant_forced_error();
  o.Set("forcedError", forced ? Napi::Value(Napi::String::New(env, forced)) : env.Null());
  return o;
}

Napi::Value KernelsSetVariant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) type_error(env, "kernelsSetVariant: name must be a string");
  Variant v;
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  need(env, parse_variant(name.c_str(), &v), "kernelsSetVariant: unknown variant '" + name + "'");
  Status st = set_active_variant(v);
  need(env, st.ok(), "kernelsSetVariant: " + name + ": " + (st.error ? st.error : ""));
  return env.Undefined();
}

Napi::Value KernelsSetThreads(const Napi::CallbackInfo& info) {
  const int n = int32(info, 0, "kernelsSetThreads", "threads");
  return Napi::Number::New(info.Env(), g_pool.set_threads(n));
}

Napi::Value PackGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "packGemm";
  Buf b = typed_of(info, 0, fn, "weights", napi_int8_array, "Int8Array");
  WeightsSource src;
  src.K = int32(info, 1, fn, "K");
  src.N = int32(info, 2, fn, "N");
  src.n_by_k = info[3].ToBoolean();
  Buf z = typed_of(info, 4, fn, "zeroPoints", napi_int32_array, "Int32Array", true);
  need(env, src.K > 0 && src.N > 0 && b.length == static_cast<size_t>(src.K) * src.N,
       std::string(fn) + ": weights must hold K * N values");
  src.data = static_cast<const int8_t*>(b.data);
  src.zero_points = static_cast<const int32_t*>(z.data);
  src.zero_point_count = z.data ? static_cast<int>(z.length) : 1;
  std::unique_ptr<PackedWeights> w;
  Status st = pack_gemm_weights(src, &w);
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  const size_t bytes = w->bytes();
  return wrap(env, std::move(w), bytes);
}

struct GemmJob : KernelJob {
  const PackedWeights* w;
  GemmArgs args;
  Status run() override {
    return with_pool([&](ThreadPool* pool) {
      Arena arena = scratch_arena(gemm_scratch_bytes(*w, args.M, pool_threads(pool)));
      return gemm(*w, args, arena, pool);
    });
  }
};

// gemm(packed, a, M, aZeroPoint, bias|null, out, scales|null, outZeroPoint, clampMin, clampMax, async)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "gemm";
  auto job = std::make_unique<GemmJob>();
  job->w = external<PackedWeights>(info, 0, fn);
  Buf a = typed(info, 1, fn, "a");
  GemmArgs& g = job->args;
  g.M = int32(info, 2, fn, "M");
  g.a_type = qtype_of(env, a, fn, "a");
  g.a_zero_point = int32(info, 3, fn, "aZeroPoint");
  Buf bias = typed_of(info, 4, fn, "bias", napi_int32_array, "Int32Array", true);
  Buf out = typed(info, 5, fn, "out");
  Buf scales = typed_of(info, 6, fn, "scales", napi_float32_array, "Float32Array", true);
  const int N = job->w->N(), K = job->w->K();
  need(env, g.M >= 0 && a.length >= static_cast<size_t>(g.M) * K, std::string(fn) + ": a must hold M * K values");
  need(env, out.length >= static_cast<size_t>(g.M) * N, std::string(fn) + ": out must hold M * N values");
  need(env, bias.data == nullptr || bias.length == static_cast<size_t>(N), std::string(fn) + ": bias must hold N values");
  g.a = a.data;
  g.bias = static_cast<const int32_t*>(bias.data);
  g.c = out.data;
  g.out = output_spec(info, out, scales, 7, N, fn);
  return dispatch(info, std::move(job), async_flag(info, 10));
}

// packConv(weights, shape Int32Array[16], zeroPoints|null)
Napi::Value PackConv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "packConv";
  Buf w = typed_of(info, 0, fn, "weights", napi_int8_array, "Int8Array");
  Buf sh = typed_of(info, 1, fn, "shape", napi_int32_array, "Int32Array");
  need(env, sh.length == 16, "packConv: shape must hold 16 values");
  const int32_t* v = static_cast<const int32_t*>(sh.data);
  ConvShape s;
  s.batch = v[0], s.H = v[1], s.W = v[2], s.C = v[3], s.out_channels = v[4], s.kernel_h = v[5], s.kernel_w = v[6];
  s.stride_h = v[7], s.stride_w = v[8], s.pad_top = v[9], s.pad_left = v[10], s.pad_bottom = v[11], s.pad_right = v[12];
  s.dilation_h = v[13], s.dilation_w = v[14], s.groups = v[15];
  if (const char* e = check_conv_shape(s)) need(env, false, e);
  need(env, w.length == static_cast<size_t>(s.out_channels) * (s.C / s.groups) * s.kernel_h * s.kernel_w,
       "packConv: weights must hold out_channels * C/groups * kernel_h * kernel_w values");
  Buf z = typed_of(info, 2, fn, "zeroPoints", napi_int32_array, "Int32Array", true);
  std::unique_ptr<PackedConv> pc;
  Status st = pack_conv(s, static_cast<const int8_t*>(w.data), static_cast<const int32_t*>(z.data),
                        z.data ? static_cast<int>(z.length) : 1, &pc);
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  const size_t bytes = pc->bytes();
  return wrap(env, std::move(pc), bytes);
}

struct ConvJob : KernelJob {
  const PackedConv* pc;
  ConvArgs args;
  Status run() override {
    return with_pool([&](ThreadPool* pool) {
      Arena arena = scratch_arena(conv_scratch_bytes(*pc, pool_threads(pool)));
      return conv(*pc, args, arena, pool);
    });
  }
};

// conv(packed, x, xZeroPoint, bias|null, out, scales|null, outZeroPoint, clampMin, clampMax, async)
Napi::Value Conv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "conv";
  auto job = std::make_unique<ConvJob>();
  job->pc = external<PackedConv>(info, 0, fn);
  const ConvShape& s = job->pc->shape();
  Buf x = typed(info, 1, fn, "x");
  ConvArgs& c = job->args;
  c.x_type = qtype_of(env, x, fn, "x");
  c.x_zero_point = int32(info, 2, fn, "xZeroPoint");
  Buf bias = typed_of(info, 3, fn, "bias", napi_int32_array, "Int32Array", true);
  Buf out = typed(info, 4, fn, "out");
  Buf scales = typed_of(info, 5, fn, "scales", napi_float32_array, "Float32Array", true);
  need(env, x.length == static_cast<size_t>(s.batch) * s.H * s.W * s.C, "conv: x must hold batch*H*W*C values");
  need(env, out.length == static_cast<size_t>(s.batch) * s.out_h() * s.out_w() * s.out_channels,
       "conv: out must hold batch*outH*outW*out_channels values");
  need(env, bias.data == nullptr || bias.length == static_cast<size_t>(s.out_channels), "conv: bias must hold out_channels values");
  c.x = x.data;
  c.bias = static_cast<const int32_t*>(bias.data);
  c.y = out.data;
  c.out = output_spec(info, out, scales, 6, s.out_channels, fn);
  return dispatch(info, std::move(job), async_flag(info, 9));
}

// quantizeLinear(x Float32Array, y, scales, zeroPoints|null, outer, channels, inner)
Napi::Value QuantizeLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "quantizeLinear";
  Buf x = typed_of(info, 0, fn, "x", napi_float32_array, "Float32Array");
  Buf y = typed(info, 1, fn, "y");
  Buf s = typed_of(info, 2, fn, "scales", napi_float32_array, "Float32Array");
  Buf z = typed_of(info, 3, fn, "zeroPoints", napi_int32_array, "Int32Array", true);
  QuantLayout l{static_cast<size_t>(num(info, 4, fn, "outer")), static_cast<size_t>(num(info, 5, fn, "channels")),
                static_cast<size_t>(num(info, 6, fn, "inner"))};
  need(env, x.length == l.count() && y.length == l.count(), "quantizeLinear: x and y must hold outer*channels*inner values");
  need(env, z.data == nullptr || z.length == s.length, "quantizeLinear: zeroPoints must match scales in length");
  Status st = quantize_linear(static_cast<const float*>(x.data), l, static_cast<const float*>(s.data),
                              static_cast<const int32_t*>(z.data), static_cast<int>(s.length), qtype_of(env, y, fn, "y"), y.data);
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  return env.Undefined();
}

Napi::Value DequantizeLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "dequantizeLinear";
  Buf x = typed(info, 0, fn, "x");
  Buf y = typed_of(info, 1, fn, "y", napi_float32_array, "Float32Array");
  Buf s = typed_of(info, 2, fn, "scales", napi_float32_array, "Float32Array");
  Buf z = typed_of(info, 3, fn, "zeroPoints", napi_int32_array, "Int32Array", true);
  QuantLayout l{static_cast<size_t>(num(info, 4, fn, "outer")), static_cast<size_t>(num(info, 5, fn, "channels")),
                static_cast<size_t>(num(info, 6, fn, "inner"))};
  need(env, x.length == l.count() && y.length == l.count(), "dequantizeLinear: x and y must hold outer*channels*inner values");
  need(env, z.data == nullptr || z.length == s.length, "dequantizeLinear: zeroPoints must match scales in length");
  Status st = dequantize_linear(x.data, qtype_of(env, x, fn, "x"), l, static_cast<const float*>(s.data),
                                static_cast<const int32_t*>(z.data), static_cast<int>(s.length), static_cast<float*>(y.data));
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  return env.Undefined();
}

PoolShape pool_shape(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  Buf sh = typed_of(info, i, fn, "shape", napi_int32_array, "Int32Array");
  need(info.Env(), sh.length == 16, std::string(fn) + ": shape must hold 16 values");
  const int32_t* v = static_cast<const int32_t*>(sh.data);
  PoolShape s;
  s.batch = v[0], s.H = v[1], s.W = v[2], s.C = v[3], s.kernel_h = v[4], s.kernel_w = v[5], s.stride_h = v[6];
  s.stride_w = v[7], s.pad_top = v[8], s.pad_left = v[9], s.pad_bottom = v[10], s.pad_right = v[11];
  s.dilation_h = v[12], s.dilation_w = v[13], s.count_include_pad = v[14] != 0;
  if (const char* e = check_pool_shape(s)) need(info.Env(), false, e);
  return s;
}

// pool(kind 'max'|'avg', x, y, shape Int32Array[16], xScale, xZp, yScale, yZp)
Napi::Value Pool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "pool";
  const std::string kind = info[0].ToString().Utf8Value();
  Buf x = typed(info, 1, fn, "x");
  Buf y = typed(info, 2, fn, "y");
  const PoolShape s = pool_shape(info, 3, fn);
  const QType t = qtype_of(env, x, fn, "x");
  need(env, y.type == x.type, "pool: x and y must have the same element type");
  need(env, x.length == static_cast<size_t>(s.batch) * s.H * s.W * s.C, "pool: x must hold batch*H*W*C values");
  need(env, y.length == static_cast<size_t>(s.batch) * s.out_h() * s.out_w() * s.C, "pool: y must hold batch*outH*outW*C values");
  Status st;
  if (kind == "max") {
    st = with_pool([&](ThreadPool* p) { return max_pool(s, x.data, t, y.data, p); });
  } else {
    const float xs = static_cast<float>(num(info, 4, fn, "xScale")), ys = static_cast<float>(num(info, 6, fn, "yScale"));
    const int32_t xz = int32(info, 5, fn, "xZeroPoint"), yz = int32(info, 7, fn, "yZeroPoint");
    st = with_pool([&](ThreadPool* p) {
      Arena arena = scratch_arena(avg_pool_scratch_bytes(s, pool_threads(p)));
      return avg_pool(s, x.data, t, xs, xz, ys, yz, y.data, arena, p);
    });
  }
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  return env.Undefined();
}

// eltwise(op 'add'|'mul', a, b, y, aScale, aZp, bScale, bZp, yScale, yZp, broadcast 0|1|2, channels, clampMin, clampMax)
Napi::Value Eltwise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "eltwise";
  const std::string op = info[0].ToString().Utf8Value();
  Buf a = typed(info, 1, fn, "a"), b = typed(info, 2, fn, "b"), y = typed(info, 3, fn, "y");
  EltwiseArgs e;
  e.type = qtype_of(env, a, fn, "a");
  need(env, b.type == a.type && y.type == a.type, "eltwise: a, b and y must have the same element type");
  e.a = a.data, e.b = b.data, e.y = y.data, e.count = a.length;
  e.a_scale = static_cast<float>(num(info, 4, fn, "aScale"));
  e.a_zero_point = int32(info, 5, fn, "aZeroPoint");
  e.b_scale = static_cast<float>(num(info, 6, fn, "bScale"));
  e.b_zero_point = int32(info, 7, fn, "bZeroPoint");
  e.y_scale = static_cast<float>(num(info, 8, fn, "yScale"));
  e.y_zero_point = int32(info, 9, fn, "yZeroPoint");
  const int bc = int32(info, 10, fn, "broadcast");
  e.broadcast = bc == 0 ? Broadcast::Full : bc == 1 ? Broadcast::PerChannel : Broadcast::Scalar;
  e.channels = static_cast<size_t>(num(info, 11, fn, "channels"));
  e.clamp_min = int32(info, 12, fn, "clampMin");
  e.clamp_max = int32(info, 13, fn, "clampMax");
  need(env, y.length == a.length, "eltwise: y must hold as many values as a");
  const size_t want_b = e.broadcast == Broadcast::Full ? a.length : e.broadcast == Broadcast::PerChannel ? e.channels : 1;
  need(env, b.length == want_b, "eltwise: b has the wrong length for its broadcast");
  Status st = with_pool([&](ThreadPool* p) { return op == "mul" ? qmul(e, p) : qadd(e, p); });
  need(env, st.ok(), std::string(st.error ? st.error : ""));
  return env.Undefined();
}

// buildLut(kind, p0, p1, inType 0|1, inScale, inZp, outType 0|1, outScale, outZp) -> Uint8Array(256)
Napi::Value BuildLut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "buildLut";
  ActivationParams p;
  p.kind = static_cast<Activation>(int32(info, 0, fn, "kind"));
  p.p0 = static_cast<float>(num(info, 1, fn, "p0"));
  p.p1 = static_cast<float>(num(info, 2, fn, "p1"));
  const QType it = int32(info, 3, fn, "inType") ? QType::S8 : QType::U8;
  const QType ot = int32(info, 6, fn, "outType") ? QType::S8 : QType::U8;
  Lut lut = build_activation_lut(p, it, static_cast<float>(num(info, 4, fn, "inScale")), int32(info, 5, fn, "inZp"), ot,
                                 static_cast<float>(num(info, 7, fn, "outScale")), int32(info, 8, fn, "outZp"));
  Napi::Uint8Array out = Napi::Uint8Array::New(env, 256);
  std::memcpy(out.Data(), lut.table, 256);
  return out;
}

// applyLut(table Uint8Array(256), x, y)
Napi::Value ApplyLut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Buf t = typed_of(info, 0, "applyLut", "table", napi_uint8_array, "Uint8Array");
  Buf x = typed(info, 1, "applyLut", "x"), y = typed(info, 2, "applyLut", "y");
  need(env, t.length == 256, "applyLut: table must hold 256 values");
  need(env, y.length == x.length && x.bytes == x.length && y.bytes == y.length, "applyLut: x and y must be byte arrays of equal length");
  Lut lut;
  std::memcpy(lut.table, t.data, 256);
  apply_lut(lut, x.data, y.data, x.length);
  return env.Undefined();
}

// kernelsPeak(variant?, milliseconds?) -> GOPS of the variant's multiply-accumulate loop
Napi::Value KernelsPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Variant v = active_variant();
  if (info.Length() > 0 && info[0].IsString()) {
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    need(env, parse_variant(name.c_str(), &v), "kernelsPeak: unknown variant '" + name + "'");
  }
  const int ms = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 200;
  return Napi::Number::New(env, peak_int8_gops(v, ms));
}

}  // namespace

Napi::Object InitKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelsInfo", Napi::Function::New(env, KernelsInfo, "kernelsInfo"));
  exports.Set("kernelsSetVariant", Napi::Function::New(env, KernelsSetVariant, "kernelsSetVariant"));
  exports.Set("kernelsSetThreads", Napi::Function::New(env, KernelsSetThreads, "kernelsSetThreads"));
  exports.Set("kernelsPackGemm", Napi::Function::New(env, PackGemm, "kernelsPackGemm"));
  exports.Set("kernelsGemm", Napi::Function::New(env, Gemm, "kernelsGemm"));
  exports.Set("kernelsPackConv", Napi::Function::New(env, PackConv, "kernelsPackConv"));
  exports.Set("kernelsConv", Napi::Function::New(env, Conv, "kernelsConv"));
  exports.Set("kernelsQuantizeLinear", Napi::Function::New(env, QuantizeLinear, "kernelsQuantizeLinear"));
  exports.Set("kernelsDequantizeLinear", Napi::Function::New(env, DequantizeLinear, "kernelsDequantizeLinear"));
  exports.Set("kernelsPool", Napi::Function::New(env, Pool, "kernelsPool"));
  exports.Set("kernelsEltwise", Napi::Function::New(env, Eltwise, "kernelsEltwise"));
  exports.Set("kernelsBuildLut", Napi::Function::New(env, BuildLut, "kernelsBuildLut"));
  exports.Set("kernelsPeak", Napi::Function::New(env, KernelsPeak, "kernelsPeak"));
  exports.Set("kernelsApplyLut", Napi::Function::New(env, ApplyLut, "kernelsApplyLut"));
  return exports;
}

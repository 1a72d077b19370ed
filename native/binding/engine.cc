// Node-API glue for the native engine: converts a plan object and weight typed arrays into
// engine descriptions, and runs inferences synchronously or on the libuv pool (Promise).
// Every rule about what a valid plan is lives in native/src/engine; this file only converts.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace {

using edge::engine::DType;
using edge::engine::Engine;

[[noreturn]] void Throw(Napi::Env env, const std::string& why) {
  Napi::Error err = Napi::Error::New(env, why);
  err.Set("code", Napi::String::New(env, "EDGE_NATIVE_PLAN_INVALID"));
  throw err;
}

std::vector<double> NumberList(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsArray()) Throw(env, what + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > (1u << 20)) Throw(env, what + " is too long");
  std::vector<double> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) Throw(env, what + "[" + std::to_string(i) + "] must be a number");
    out.push_back(x.As<Napi::Number>().DoubleValue());
  }
  return out;
}

int Index(Napi::Env env, Napi::Value v, const std::string& what) {
  if (!v.IsNumber()) Throw(env, what + " must be an integer index");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int>(d)) || d < -1 || d > 1e9) Throw(env, what + " must be an integer index");
  return static_cast<int>(d);
}

Napi::Array ArrayField(Napi::Env env, Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) Throw(env, what + "." + key + " must be an array");
  return v.As<Napi::Array>();
}

edge::engine::PlanDesc ReadPlan(Napi::Env env, Napi::Value value) {
  if (!value.IsObject()) Throw(env, "plan must be an object {tensors, ops, inputs, outputs}");
  Napi::Object plan = value.As<Napi::Object>();
  edge::engine::PlanDesc out;
  Napi::Array tensors = ArrayField(env, plan, "tensors", "plan");
  for (uint32_t i = 0; i < tensors.Length(); ++i) {
    const std::string what = "plan.tensors[" + std::to_string(i) + "]";
    Napi::Value tv = tensors.Get(i);
    if (!tv.IsObject()) Throw(env, what + " must be an object");
    Napi::Object t = tv.As<Napi::Object>();
    edge::engine::TensorDesc d;
    Napi::Value dt = t.Get("dtype");
    if (!dt.IsString() || !edge::engine::parse_dtype(dt.As<Napi::String>().Utf8Value(), &d.dtype)) {
      Throw(env, what + ".dtype must be one of u8, s8, i32, f32, u16");
    }
    for (double x : NumberList(env, t.Get("shape"), what + ".shape")) {
      if (x != static_cast<double>(static_cast<int64_t>(x))) Throw(env, what + ".shape must hold integers");
      d.shape.push_back(static_cast<int64_t>(x));
    }
    if (t.Has("viewOf") && !t.Get("viewOf").IsUndefined()) d.view_of = Index(env, t.Get("viewOf"), what + ".viewOf");
    if (t.Has("constant") && !t.Get("constant").IsUndefined()) d.constant = Index(env, t.Get("constant"), what + ".constant");
    out.tensors.push_back(std::move(d));
  }
  Napi::Array ops = ArrayField(env, plan, "ops", "plan");
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    const std::string what = "plan.ops[" + std::to_string(i) + "]";
    Napi::Value ov = ops.Get(i);
    if (!ov.IsObject()) Throw(env, what + " must be an object");
    Napi::Object o = ov.As<Napi::Object>();
    edge::engine::OpDesc d;
    Napi::Array keys = o.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string key = keys.Get(k).ToString().Utf8Value();
      Napi::Value v = o.Get(key);
      if (key == "op") {
        if (!v.IsString()) Throw(env, what + ".op must be a string");
        d.op = v.As<Napi::String>().Utf8Value();
      } else if (v.IsNumber()) {
        d.num[key] = v.As<Napi::Number>().DoubleValue();
      } else if (v.IsBoolean()) {
        d.num[key] = v.As<Napi::Boolean>().Value() ? 1 : 0;
      } else if (v.IsArray()) {
        d.list[key] = NumberList(env, v, what + "." + key);
      } else {
        Throw(env, what + "." + key + " must be a number, boolean or number array");
      }
    }
    out.ops.push_back(std::move(d));
  }
  for (const char* kind : {"inputs", "outputs"}) {
    Napi::Array list = ArrayField(env, plan, kind, "plan");
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const std::string what = std::string("plan.") + kind + "[" + std::to_string(i) + "]";
      Napi::Value iv = list.Get(i);
      if (!iv.IsObject()) Throw(env, what + " must be an object {name, tensor}");
      Napi::Object io = iv.As<Napi::Object>();
      edge::engine::IODesc d;
      d.name = io.Get("name").ToString().Utf8Value();
      d.tensor = Index(env, io.Get("tensor"), what + ".tensor");
      (std::string(kind) == "inputs" ? out.inputs : out.outputs).push_back(std::move(d));
    }
  }
  return out;
}

std::vector<edge::engine::WeightDesc> ReadWeights(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) Throw(env, "weights must be an array of typed arrays");
  Napi::Array a = value.As<Napi::Array>();
  std::vector<edge::engine::WeightDesc> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    const std::string what = "weights[" + std::to_string(i) + "]";
    if (!v.IsTypedArray()) Throw(env, what + " must be an Int8Array, Uint8Array, Int32Array, Float32Array or Uint16Array");
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    edge::engine::WeightDesc w;
    switch (t.TypedArrayType()) {
      case napi_int8_array: w.dtype = DType::S8; break;
      case napi_uint8_array: w.dtype = DType::U8; break;
      case napi_int32_array: w.dtype = DType::I32; break;
      case napi_float32_array: w.dtype = DType::F32; break;
      case napi_uint16_array: w.dtype = DType::U16; break;
      default: Throw(env, what + " must be an Int8Array, Uint8Array, Int32Array, Float32Array or Uint16Array");
    }
    const uint8_t* data = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    w.bytes.assign(data, data + t.ByteLength());
    out.push_back(std::move(w));
  }
  return out;
}

Napi::TypedArray MakeOutput(Napi::Env env, const edge::engine::TensorInfo& info) {
  const size_t n = info.bytes / edge::engine::dtype_bytes(info.dtype);
  switch (info.dtype) {
    case DType::F32: return Napi::Float32Array::New(env, n);
    case DType::S8: return Napi::Int8Array::New(env, n);
    case DType::I32: return Napi::Int32Array::New(env, n);
    default: return Napi::Uint8Array::New(env, n);
  }
}

void* DataOf(Napi::TypedArray t) { return static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset(); }

// Inputs checked against the engine's expectations; throws a TypeError saying what was expected.
std::vector<Napi::TypedArray> CheckInputs(Napi::Env env, const Engine& e, Napi::Value v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "inputs must be an array of typed arrays, one per model input");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != e.inputs().size()) {
    throw Napi::TypeError::New(env, "expected " + std::to_string(e.inputs().size()) + " inputs, got " + std::to_string(a.Length()));
  }
  std::vector<Napi::TypedArray> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const auto& info = e.inputs()[i];
    Napi::Value x = a.Get(i);
    if (!x.IsTypedArray() || x.As<Napi::TypedArray>().ByteLength() != info.bytes) {
      throw Napi::TypeError::New(env, "input '" + info.name + "' must be a " + edge::engine::dtype_name(info.dtype) + " typed array of " +
                                          std::to_string(info.bytes) + " bytes");
    }
    out.push_back(x.As<Napi::TypedArray>());
  }
  return out;
}

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Engine> engine, const std::vector<Napi::TypedArray>& inputs)
      : Napi::AsyncWorker(env), engine_(std::move(engine)), deferred_(Napi::Promise::Deferred::New(env)) {
    // Keep the caller's input arrays alive and write straight into fresh output arrays:
    // the worker thread touches only their backing stores, never JavaScript values.
    for (const auto& t : inputs) {
      in_refs_.push_back(Napi::Persistent(t));
      in_.push_back(DataOf(t));
    }
    for (const auto& info : engine_->outputs()) {
      Napi::TypedArray o = MakeOutput(env, info);
      out_.push_back(DataOf(o));
      out_refs_.push_back(Napi::Persistent(o));
    }
    // The engine's pool workers (asleep since the last run) wake while the run travels to the
    // libuv pool: MobileNetV2's async 2-thread run measured 1.44-1.45x -> 1.50-1.52x of 1 thread.
    engine_->prewake();
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    std::string error;
    if (engine_->run(in_.data(), out_.data(), &error)) SetError(error);
  }
  void OnOK() override {
    Napi::Array result = Napi::Array::New(Env(), out_refs_.size());
    for (size_t i = 0; i < out_refs_.size(); ++i) result.Set(static_cast<uint32_t>(i), out_refs_[i].Value());
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<Engine> engine_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::TypedArray>> in_refs_, out_refs_;
  std::vector<const void*> in_;
  std::vector<void*> out_;
};

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeEngine", {
      InstanceMethod("run", &NativeEngine::Run),
      InstanceMethod("runAsync", &NativeEngine::RunAsync),
      InstanceMethod("describe", &NativeEngine::Describe),
      InstanceMethod("profile", &NativeEngine::Profile),
      InstanceMethod("dispose", &NativeEngine::Dispose),
    });
  }

  // new NativeEngine(plan, weights, {threads})
  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2) Throw(env, "NativeEngine(plan, weights, options?) needs a plan and a weights array");
    edge::engine::PlanDesc plan = ReadPlan(env, info[0]);
    std::vector<edge::engine::WeightDesc> weights = ReadWeights(env, info[1]);
    int threads = 1;
    if (info.Length() > 2 && info[2].IsObject()) {
      Napi::Value t = info[2].As<Napi::Object>().Get("threads");
      if (t.IsNumber()) threads = t.As<Napi::Number>().Int32Value();
    }
    std::string error;
    std::unique_ptr<Engine> e = Engine::create(plan, weights, threads, &error);
    if (!e) Throw(env, error);
    engine_ = std::shared_ptr<Engine>(std::move(e));
  }

 private:
  std::shared_ptr<Engine> Live(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "this native engine was disposed");
    return engine_;
  }

  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Engine> e = Live(env);
    std::vector<Napi::TypedArray> inputs = CheckInputs(env, *e, info[0]);
    std::vector<const void*> in;
    for (const auto& t : inputs) in.push_back(DataOf(t));
    Napi::Array result = Napi::Array::New(env, e->outputs().size());
    std::vector<void*> out;
    for (size_t i = 0; i < e->outputs().size(); ++i) {
      Napi::TypedArray o = MakeOutput(env, e->outputs()[i]);
      out.push_back(DataOf(o));
      result.Set(static_cast<uint32_t>(i), o);
    }
    std::string error;
    if (e->run(in.data(), out.data(), &error)) throw Napi::Error::New(env, error);
    return result;
  }

  Napi::Value RunAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Engine> e = Live(env);
    std::vector<Napi::TypedArray> inputs = CheckInputs(env, *e, info[0]);
    auto* worker = new RunWorker(env, e, inputs);
    Napi::Promise p = worker->Promise();
    worker->Queue();
    return p;
  }

  Napi::Value Describe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Engine> e = Live(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("variant", e->variant());
    o.Set("threads", e->threads());
    o.Set("steps", static_cast<double>(e->step_count()));
    o.Set("arenaBytes", static_cast<double>(e->arena_bytes()));
    o.Set("tensorBytes", static_cast<double>(e->tensor_bytes()));
    o.Set("scratchBytes", static_cast<double>(e->scratch_bytes()));
    o.Set("weightBytes", static_cast<double>(e->weight_bytes()));
    const auto io = [&](const std::vector<edge::engine::TensorInfo>& list) {
      Napi::Array a = Napi::Array::New(env, list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        Napi::Object t = Napi::Object::New(env);
        t.Set("name", list[i].name);
        t.Set("dtype", edge::engine::dtype_name(list[i].dtype));
        Napi::Array s = Napi::Array::New(env, list[i].shape.size());
        for (size_t d = 0; d < list[i].shape.size(); ++d) s.Set(static_cast<uint32_t>(d), static_cast<double>(list[i].shape[d]));
        t.Set("shape", s);
        a.Set(static_cast<uint32_t>(i), t);
      }
      return a;
    };
    o.Set("inputs", io(e->inputs()));
    o.Set("outputs", io(e->outputs()));
    return o;
  }

  // profile(inputs, runs) -> [{step, ns}]: mean time per step, for the benchmark.
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Engine> e = Live(env);
    std::vector<Napi::TypedArray> inputs = CheckInputs(env, *e, info[0]);
    std::vector<const void*> in;
    for (const auto& t : inputs) in.push_back(DataOf(t));
    const int runs = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 100;
    std::string error;
    std::vector<double> ns = e->profile(in.data(), std::max(1, runs), &error);
    if (!error.empty()) throw Napi::Error::New(env, error);
    std::vector<std::string> names = e->step_names();
    Napi::Array out = Napi::Array::New(env, ns.size());
    for (size_t i = 0; i < ns.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("step", names[i]);
      o.Set("ns", ns[i]);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    engine_.reset();  // a queued run keeps its own reference until it finishes
    return info.Env().Undefined();
  }

  std::shared_ptr<Engine> engine_;
};

}  // namespace

Napi::Object InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", NativeEngine::Define(env));
  exports.Set("kernelVariant", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), edge::kernels::active_variant_name());
  }));
  return exports;
}

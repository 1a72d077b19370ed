// Node-API glue only: converts arguments and results, no logic of its own.
#include <napi.h>

#include "kernels/cpu_features.h"
#include "sys/sd_notify.h"

namespace {

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(state): state must be a string such as 'READY=1'");
  }
  return Napi::Number::New(env, edge::sys::sd_notify(info[0].As<Napi::String>().Utf8Value()));
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), edge::kernels::cpu_features_string());
}

}  // namespace

Napi::Object InitEngine(Napi::Env env, Napi::Object exports);  // engine.cc
Napi::Object InitKernels(Napi::Env env, Napi::Object exports);  // kernels.cc

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures, "cpuFeatures"));
  InitEngine(env, exports);
  InitKernels(env, exports);
  return exports;
}

NODE_API_MODULE(edge_native, Init)

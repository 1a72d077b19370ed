#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <cstring>

#include "engine/arena_plan.h"

namespace edge::engine {

size_t dtype_bytes(DType t) { return t == DType::I32 || t == DType::F32 ? 4 : t == DType::U16 ? 2 : 1; }
const char* dtype_name(DType t) {
  switch (t) {
    case DType::U8: return "u8";
    case DType::S8: return "s8";
    case DType::I32: return "i32";
    case DType::F32: return "f32";
    case DType::U16: return "u16";
  }
  return "?";
}
bool parse_dtype(const std::string& s, DType* out) {
  for (DType t : {DType::U8, DType::S8, DType::I32, DType::F32, DType::U16}) {
    if (s == dtype_name(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

namespace {

// Below this many multiply-accumulates a conv or GEMM runs on the calling thread alone: waking
// the pool costs a few microseconds, about what the whole step takes (digits-sized layers).
constexpr int64_t kSplitMinWork = int64_t(1) << 18;
bool worth_splitting(const Step& s) {
  const int64_t w = s.work();
  return w < 0 || w >= kSplitMinWork;
}

// Upper bound for one tensor and for the arena: a plan for an edge model that needs more is
// almost certainly malformed, and refusing beats an allocation failure at load.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 30;

size_t desc_bytes(const TensorDesc& t) { return static_cast<size_t>(element_count(t)) * dtype_bytes(t.dtype); }

void check_tensors(const PlanDesc& plan, const std::vector<WeightDesc>& weights) {
  const int n = static_cast<int>(plan.tensors.size());
  for (int i = 0; i < n; ++i) {
    const TensorDesc& t = plan.tensors[i];
    const std::string label = "tensor " + std::to_string(i);
    if (t.shape.empty() || t.shape.size() > 6) throw PlanError(label + ": rank must be 1 to 6");
    int64_t bytes = static_cast<int64_t>(dtype_bytes(t.dtype));
    for (int64_t d : t.shape) {
      if (d < 1 || d > kMaxTensorBytes) throw PlanError(label + ": every dimension must be at least 1");
      bytes *= d;
      if (bytes > kMaxTensorBytes) throw PlanError(label + ": larger than 1 GiB");
    }
    if (t.view_of >= 0) {
      if (t.view_of >= i) throw PlanError(label + ": a view must refer to an earlier tensor");
      const TensorDesc& base = plan.tensors[t.view_of];
      if (base.view_of >= 0) throw PlanError(label + ": a view must refer to a tensor that is not itself a view");
      if (desc_bytes(base) != desc_bytes(t)) throw PlanError(label + ": a view must have the byte size of its base tensor");
      if (t.constant >= 0) throw PlanError(label + ": a view cannot also be a constant");
    }
    if (t.constant >= 0) {
      if (t.constant >= static_cast<int>(weights.size())) throw PlanError(label + ": constant refers to a missing weight");
      const WeightDesc& w = weights[t.constant];
      if (w.dtype != t.dtype || w.bytes.size() != desc_bytes(t)) {
        throw PlanError(label + ": constant weight must match the tensor's element type and size");
      }
    }
  }
}

}  // namespace

std::unique_ptr<Engine> Engine::create(const PlanDesc& plan, const std::vector<WeightDesc>& weights, int threads,
                                       std::string* error) {
  try {
    std::unique_ptr<Engine> e(new Engine());
    // threads <= 0: every hardware thread.
    e->threads_ = std::max(1, std::min(threads <= 0 ? kernels::ThreadPool::hardware_threads() : threads, 64));
    e->variant_ = kernels::active_variant();
    check_tensors(plan, weights);
    const int nt = static_cast<int>(plan.tensors.size());
    const auto base = [&](int t) { return plan.tensors[t].view_of >= 0 ? plan.tensors[t].view_of : t; };
    if (plan.ops.empty()) throw PlanError("the plan has no ops");
    if (plan.inputs.empty() || plan.outputs.empty()) throw PlanError("the plan needs at least one input and one output");

    // Which storage holds data before each op: graph inputs and constants at the start.
    std::vector<int> writer(nt, -2);  // -2: never written, -1: input or constant
    std::vector<bool> is_input(nt, false);
    for (int t = 0; t < nt; ++t) if (plan.tensors[t].constant >= 0) writer[t] = -1;
    const auto io = [&](const IODesc& d, const char* kind) {
      if (d.tensor < 0 || d.tensor >= nt) throw PlanError(std::string(kind) + " '" + d.name + "' refers to a missing tensor");
      const TensorDesc& t = plan.tensors[d.tensor];
      return TensorInfo{d.name, t.dtype, t.shape, desc_bytes(t)};
    };
    for (const IODesc& d : plan.inputs) {
      TensorInfo info = io(d, "input");
      const TensorDesc& t = plan.tensors[d.tensor];
      if (t.view_of >= 0 || t.constant >= 0 || is_input[d.tensor]) {
        throw PlanError("input '" + d.name + "' must be its own tensor (not a view, a constant or another input)");
      }
      if (t.dtype == DType::I32 || t.dtype == DType::U16) throw PlanError("input '" + d.name + "' must be f32, u8 or s8");
      is_input[d.tensor] = true;
      writer[d.tensor] = -1;
      e->input_tensors_.push_back(d.tensor);
      e->inputs_.push_back(std::move(info));
    }

    BuildContext ctx{&plan.tensors, &weights, e->threads_};
    std::vector<int> last_read(nt, -1);
    for (size_t i = 0; i < plan.ops.size(); ++i) {
      std::unique_ptr<Step> step = build_step(plan.ops[i], static_cast<int>(i), ctx);
      for (int r : step->reads) {
        if (writer[base(r)] == -2) throw PlanError(step->name + ": reads tensor " + std::to_string(r) + " before anything writes it");
        last_read[base(r)] = static_cast<int>(i);
      }
      const int w = step->writes;
      if (plan.tensors[w].view_of >= 0) throw PlanError(step->name + ": writes into a view");
      if (writer[w] != -2) throw PlanError(step->name + ": tensor " + std::to_string(w) + " is already written (inputs, constants and op outputs are written once)");
      writer[w] = static_cast<int>(i);
      e->weight_bytes_ += step->weight_bytes();
      e->steps_.push_back(std::move(step));
    }
    const int end = static_cast<int>(plan.ops.size());
    for (const IODesc& d : plan.outputs) {
      TensorInfo info = io(d, "output");
      if (plan.tensors[d.tensor].dtype == DType::U16) throw PlanError("output '" + d.name + "' must be f32, u8, s8 or i32 (dequantize a u16 tensor)");
      if (writer[base(d.tensor)] == -2) throw PlanError("output '" + d.name + "' is never written");
      last_read[base(d.tensor)] = end;
      e->output_tensors_.push_back(d.tensor);
      e->outputs_.push_back(std::move(info));
    }

    // Place base tensors in one arena; constants and inputs live for the whole run.
    std::vector<int> bases;
    std::vector<Lifetime> lives;
    for (int t = 0; t < nt; ++t) {
      if (plan.tensors[t].view_of >= 0 || writer[t] == -2) continue;
      Lifetime l;
      l.bytes = desc_bytes(plan.tensors[t]);
      const bool pinned = plan.tensors[t].constant >= 0;
      l.first = writer[t];
      l.last = pinned ? end : std::max(last_read[t], writer[t]);
      bases.push_back(t);
      lives.push_back(l);
    }
    // Inputs are read in place by the steps (a 224x224 float image is 600 KB a run not copied),
    // except one that is also an output (or whose view is): run() copies outputs from the arena.
    e->input_slot_.assign(nt, -1);
    for (size_t i = 0; i < e->input_tensors_.size(); ++i) {
      const int t = e->input_tensors_[i];
      const bool is_output = std::any_of(e->output_tensors_.begin(), e->output_tensors_.end(), [&](int o) { return base(o) == t; });
      if (is_output) continue;
      for (int v = 0; v < nt; ++v) if (base(v) == t) e->input_slot_[v] = static_cast<int>(i);
    }
    std::vector<size_t> placed = place_tensors(lives, &e->tensor_bytes_);
    e->offsets_.assign(nt, 0);
    for (size_t i = 0; i < bases.size(); ++i) e->offsets_[bases[i]] = placed[i];
    for (int t = 0; t < nt; ++t) if (plan.tensors[t].view_of >= 0) e->offsets_[t] = e->offsets_[plan.tensors[t].view_of];

    for (const auto& s : e->steps_) e->scratch_bytes_ = std::max(e->scratch_bytes_, s->scratch_bytes(e->threads_));
    e->scratch_bytes_ = (e->scratch_bytes_ + 63) & ~size_t(63);
    const size_t total = e->tensor_bytes_ + e->scratch_bytes_;
    e->memory_.reset(new uint8_t[total + 64]());
    e->arena_ = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(e->memory_.get()) + 63) & ~uintptr_t(63));
    for (int t = 0; t < nt; ++t) {
      const TensorDesc& d = plan.tensors[t];
      if (d.constant >= 0) std::memcpy(e->arena_ + e->offsets_[t], weights[d.constant].bytes.data(), weights[d.constant].bytes.size());
    }
    if (e->threads_ > 1) e->pool_ = std::make_unique<kernels::ThreadPool>(e->threads_);
    return e;
  } catch (const PlanError& err) {
    *error = err.what();
  } catch (const std::bad_alloc&) {
    *error = "out of memory while building the plan";
  }
  return nullptr;
}

const char* Engine::run(const void* const* inputs, void* const* outputs, std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  // The workers (asleep since the last run) wake while the run sets out.
  if (pool_) pool_->wake();
  for (size_t i = 0; i < input_tensors_.size(); ++i) {
    const int t = input_tensors_[i];
    if (input_slot_[t] < 0) std::memcpy(arena_ + offsets_[t], inputs[i], inputs_[i].bytes);
  }
  kernels::Arena scratch(arena_ + tensor_bytes_, scratch_bytes_);
  RunContext ctx{arena_, &offsets_, &scratch, pool_.get(), input_slot_.data(), inputs};
  RunContext inline_ctx{arena_, &offsets_, &scratch, nullptr, input_slot_.data(), inputs};
  // The run's last step done (or failed), the pool's workers sleep rather than spin while the
  // result travels back (on 2 cores a spinning worker delayed that hand-off by tens of µs).
  struct Park {
    kernels::ThreadPool* pool;
    ~Park() { if (pool) pool->park(); }
  } park{pool_.get()};
  for (const auto& step : steps_) {
    scratch.reset();
    const kernels::Status st = step->run(worth_splitting(*step) ? ctx : inline_ctx);
    if (!st.ok()) {
      *error = step->name + ": " + st.error;
      return error->c_str();
    }
  }
  for (size_t i = 0; i < output_tensors_.size(); ++i) {
    std::memcpy(outputs[i], arena_ + offsets_[output_tensors_[i]], outputs_[i].bytes);
  }
  return nullptr;
}



void Engine::prewake() {
  if (pool_) pool_->wake(/*steer=*/false);
}

std::vector<double> Engine::profile(const void* const* inputs, int runs, std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> ns(steps_.size(), 0);
  kernels::Arena scratch(arena_ + tensor_bytes_, scratch_bytes_);
  RunContext ctx{arena_, &offsets_, &scratch, pool_.get()};
  RunContext inline_ctx{arena_, &offsets_, &scratch, nullptr};
  // EDGE_PROFILE_CLOCK=wall: wall time per step, which is what a second thread shortens (thread
  // CPU time counts only the calling thread's share of a split step).
  const char* clock_env = std::getenv("EDGE_PROFILE_CLOCK");
  const clockid_t clock = clock_env && std::strcmp(clock_env, "wall") == 0 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
  for (int r = 0; r < runs; ++r) {
    // Inputs share arena bytes with later tensors, so they are copied in every run, as in run().
    for (size_t i = 0; i < input_tensors_.size(); ++i) {
      std::memcpy(arena_ + offsets_[input_tensors_[i]], inputs[i], inputs_[i].bytes);
    }
    for (size_t s = 0; s < steps_.size(); ++s) {
      scratch.reset();
      // Thread CPU time: on a shared machine wall time mostly measures other processes.
      timespec t0{}, t1{};
      clock_gettime(clock, &t0);
      const kernels::Status st = steps_[s]->run(worth_splitting(*steps_[s]) ? ctx : inline_ctx);
      clock_gettime(clock, &t1);
      ns[s] += (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
      if (!st.ok()) {
        *error = steps_[s]->name + ": " + st.error;
        return {};
      }
    }
  }
  for (double& v : ns) v /= std::max(runs, 1);
  return ns;
}

std::vector<std::string> Engine::step_names() const {
  std::vector<std::string> out;
  for (const auto& s : steps_) out.push_back(s->name);
  return out;
}

}  // namespace edge::engine

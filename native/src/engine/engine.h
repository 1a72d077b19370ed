#pragma once
// The native int8 inference engine: a checked plan compiled into an ordered list of steps
// (fused quantized kernels with pre-packed weights) over one arena sized at load. A run
// reads the inputs where the caller holds them, runs every step, and copies the outputs out;
// nothing is allocated per inference. Runs on one engine are serialised (one arena, one thread pool).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "engine/steps.h"
#include "kernels/kernels.h"

namespace edge::engine {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t bytes = 0;
};

class Engine {
 public:
  // Checks and builds the plan; on failure returns null and sets *error to a sentence that
  // names the op or tensor at fault. threads: intra-op threads (1 = the calling thread only).
  static std::unique_ptr<Engine> create(const PlanDesc& plan, const std::vector<WeightDesc>& weights, int threads,
                                        std::string* error);

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  // inputs[i] holds inputs()[i].bytes bytes, outputs[i] has room for outputs()[i].bytes.
  // Returns null on success, else the failing step's error.
  const char* run(const void* const* inputs, void* const* outputs, std::string* error);
  // An inference will start soon on another thread (the addon queues it on the libuv pool):
  // the pool's sleeping workers wake now rather than at the run's first step. Thread-safe.
  void prewake();

  // Runs `runs` times and returns the mean thread-CPU nanoseconds of each step (benchmarks).
  std::vector<double> profile(const void* const* inputs, int runs, std::string* error);

  size_t arena_bytes() const { return tensor_bytes_ + scratch_bytes_; }
  size_t tensor_bytes() const { return tensor_bytes_; }
  size_t scratch_bytes() const { return scratch_bytes_; }
  size_t weight_bytes() const { return weight_bytes_; }
  size_t step_count() const { return steps_.size(); }
  std::vector<std::string> step_names() const;
  int threads() const { return threads_; }
  const char* variant() const { return kernels::variant_name(variant_); }

 private:
  Engine() = default;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<size_t> offsets_;
  std::vector<int> input_tensors_, output_tensors_;
  // Per tensor: the input run() reads in place (no copy into the arena), or -1.
  std::vector<int> input_slot_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::unique_ptr<uint8_t[]> memory_;
  uint8_t* arena_ = nullptr;  // memory_ aligned to 64 bytes
  size_t tensor_bytes_ = 0, scratch_bytes_ = 0, weight_bytes_ = 0;
  int threads_ = 1;
  kernels::Variant variant_ = kernels::Variant::Scalar;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::mutex mu_;
};

}  // namespace edge::engine

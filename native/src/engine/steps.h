#pragma once
// One fused op of a plan, ready to run: arguments checked, weights packed, kernel chosen.
// Steps address tensors by index; the engine resolves indices to arena offsets after it has
// placed every tensor, so a step never owns activation memory.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "kernels/kernels.h"

namespace edge::engine {

// A plan that cannot be built; the message names the op or tensor and what was expected.
class PlanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunContext {
  uint8_t* arena = nullptr;
  const std::vector<size_t>* offsets = nullptr;  // per tensor index, views included
  kernels::Arena* scratch = nullptr;
  kernels::ThreadPool* pool = nullptr;
  // Inputs read where the caller holds them (Engine::run): per tensor, the index into `inputs`
  // or -1 (in the arena). Steps never write an input (the plan check refuses it), so handing
  // the caller's bytes out as void* is safe.
  const int* input_slot = nullptr;
  const void* const* inputs = nullptr;
  void* at(int tensor) const {
    if (input_slot != nullptr && input_slot[tensor] >= 0) return const_cast<void*>(inputs[input_slot[tensor]]);
    return arena + (*offsets)[tensor];
  }
};

class Step {
 public:
  virtual ~Step() = default;
  virtual kernels::Status run(const RunContext& ctx) const = 0;
  // Kernel scratch this step needs with `threads` threads.
  virtual size_t scratch_bytes(int threads) const { (void)threads; return 0; }
  // Bytes of packed weights and tables this step holds.
  virtual size_t weight_bytes() const { return 0; }
  // Multiply-accumulates per run, for steps whose threads pay only above some size; -1: the
  // step always takes the pool (its kernel splits only what is worth splitting).
  virtual int64_t work() const { return -1; }
  std::string name;         // "conv #3", for errors
  std::vector<int> reads;   // tensor indices
  int writes = -1;
};

// What a step builder may look at: the whole (checked) tensor list and the weights.
struct BuildContext {
  const std::vector<TensorDesc>* tensors = nullptr;
  const std::vector<WeightDesc>* weights = nullptr;
  int threads = 1;
};

// Builds one step or throws PlanError.
std::unique_ptr<Step> build_step(const OpDesc& op, int index, const BuildContext& ctx);

int64_t element_count(const TensorDesc& t);

}  // namespace edge::engine

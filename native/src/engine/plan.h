#pragma once
// The plan as it arrives from the compiler (agent/runtime/native/compile/), in plain C++
// types and not yet trusted: Engine::create() checks every index, shape and size before it
// builds anything. Ops are kept generic (named numbers and number lists) so the Node-API glue
// stays a mechanical conversion and every rule lives in the step builders (steps_<family>.cc).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edge::engine {

// U16: the activations of W8A16 plans (steps_a16.cc).
enum class DType : uint8_t { U8, S8, I32, F32, U16 };
size_t dtype_bytes(DType t);
const char* dtype_name(DType t);
bool parse_dtype(const std::string& s, DType* out);

struct TensorDesc {
  DType dtype = DType::U8;
  std::vector<int64_t> shape;  // storage order
  int view_of = -1;            // shares that tensor's storage
  int constant = -1;           // filled from this weight at load
};

struct OpDesc {
  std::string op;
  std::map<std::string, double> num;                 // scalars and booleans (0/1)
  std::map<std::string, std::vector<double>> list;   // number lists
};

struct IODesc {
  std::string name;
  int tensor = -1;
};

struct PlanDesc {
  std::vector<TensorDesc> tensors;
  std::vector<OpDesc> ops;
  std::vector<IODesc> inputs, outputs;
};

struct WeightDesc {
  DType dtype = DType::U8;
  std::vector<uint8_t> bytes;
  size_t count() const { return bytes.size() / dtype_bytes(dtype); }
  template <class T>
  const T* as() const { return reinterpret_cast<const T*>(bytes.data()); }
};

}  // namespace edge::engine

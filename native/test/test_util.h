#pragma once
// Shared helpers for the standalone differential tests: a seeded RNG, buffers whose end sits
// against an inaccessible page (a read or write past the end faults at once), and failure
// reporting that names the case so it can be replayed from the logged seed.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace edge::test {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int uniform(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
  float unit() { return static_cast<float>(next() >> 40) / static_cast<float>(1ull << 24); }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }

 private:
  uint64_t s_;
};

// `bytes` usable bytes ending exactly at a PROT_NONE page; the page before is also PROT_NONE
// so reads in front of the start fault when the buffer is a whole number of pages.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t bytes) : bytes_(bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t body = (bytes + page - 1) / page * page;
    total_ = body + 2 * page;
    void* m = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("mmap");
      std::abort();
    }
    base_ = static_cast<uint8_t*>(m);
    mprotect(base_, page, PROT_NONE);
    mprotect(base_ + page + body, page, PROT_NONE);
    data_ = base_ + page + body - bytes;
    std::memset(base_ + page, 0xA5, body);
  }
  ~GuardedBuffer() { munmap(base_, total_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  template <class T = uint8_t>
  T* as() { return reinterpret_cast<T*>(data_); }
  size_t size() const { return bytes_; }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0, total_ = 0;
};

struct Counters {
  long cases = 0, failures = 0;
};
Counters& counters();

// Records one case; prints the first failures with their description.
bool expect(bool ok, const std::string& what);
std::string fmt(const char* f, ...);

}  // namespace edge::test

#include "kernels/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace edge::kernels {

namespace {

constexpr int kClaimBits = 20;
constexpr uint64_t kClaimMask = (uint64_t{1} << kClaimBits) - 1;
constexpr uint64_t kGenMask = (uint64_t{1} << (64 - 2 * kClaimBits)) - 1;

inline uint64_t gen_of(uint64_t s) { return s >> (2 * kClaimBits); }
// The claims not yet taken are [front, back): the caller takes from the front, workers from
// the back, so across a chain of layers each thread keeps to the same part of the image (the
// rows it wrote are still in its cache), and the two meet wherever their speeds say.
inline uint64_t back_of(uint64_t s) { return (s >> kClaimBits) & kClaimMask; }
inline uint64_t front_of(uint64_t s) { return s & kClaimMask; }
inline uint64_t pack(uint64_t gen, uint64_t back, uint64_t front) {
  return (gen << (2 * kClaimBits)) | (back << kClaimBits) | front;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

using Clock = std::chrono::steady_clock;

}  // namespace

int ThreadPool::hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int ThreadPool::default_spin_us() {
  const char* env = std::getenv("EDGE_POOL_SPIN_US");
  if (env == nullptr || *env == '\0') return 1000;
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < 0) return 1000;
  return static_cast<int>(v > 1000000 ? 1000000 : v);
}

ThreadPool::ThreadPool(int threads)
    : threads_(threads <= 0 ? hardware_threads() : threads),
      spin_us_(default_spin_us()),
      ranges_(static_cast<size_t>(threads_)),
      worker_tids_(static_cast<size_t>(threads_)) {
  // The caller is thread 0; workers are 1..threads-1.
  for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
#if defined(__linux__)
  // Every worker's thread id is known before the first step, which steers them all.
  for (int i = 1; i < threads_; ++i)
    while (worker_tids_[static_cast<size_t>(i)].load(std::memory_order_acquire) == 0) std::this_thread::yield();
#endif
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(uint64_t gen, int thread) {
  const TaskRef* fn = nullptr;
  int tasks = 0, per = 1;
  int ran = 0;  // claims this thread ran in this step
  // Claims [first, first + k) of a range whose word was `s`, taken by CAS; false if it lost.
  auto claim = [&](std::atomic<uint64_t>& word, uint64_t& s, bool front, uint64_t k) {
    const uint64_t want = front ? s + k : s - (k << kClaimBits);
    // Read before the claim: a successful claim proves the step is not finished, so the caller
    // has not yet replaced fn_ and tasks_ with the next step's.
    fn = fn_.load(std::memory_order_acquire);
    tasks = tasks_.load(std::memory_order_relaxed);
    per = per_claim_.load(std::memory_order_relaxed);
    if (!word.compare_exchange_weak(s, want, std::memory_order_acq_rel, std::memory_order_acquire)) return false;
    const uint64_t had = s;
    s = want;
    const int c = static_cast<int>(front ? front_of(had) : back_of(had) - k);
    const int first = c * per, end = (c + static_cast<int>(k)) * per, last = end < tasks ? end : tasks;
    for (int t = first; t < last; ++t) (*fn)(t, thread);
    ran += static_cast<int>(k);
    return true;
  };
  // Its own range first, from the front, one claim at a time: nobody else touches that word
  // unless this thread falls behind, so a claim costs no transfer between cores.
  std::atomic<uint64_t>& own = ranges_[static_cast<size_t>(thread)].word;
  for (uint64_t s = own.load(std::memory_order_acquire); gen_of(s) == gen && front_of(s) < back_of(s);) claim(own, s, true, 1);
  // Then the others' leftovers, from their back: half of what is left, so a thread that was
  // descheduled (or sleeping) loses its share to those that are running.
  for (int d = 1; d < threads_; ++d) {
    std::atomic<uint64_t>& other = ranges_[static_cast<size_t>((thread + d) % threads_)].word;
    for (uint64_t s = other.load(std::memory_order_acquire); gen_of(s) == gen && front_of(s) < back_of(s);)
      claim(other, s, false, std::max<uint64_t>(1, (back_of(s) - front_of(s)) / 2));
  }
  if (ran > 0) done_.fetch_add(ran, std::memory_order_release);
}

bool ThreadPool::wait_for_step(uint64_t seen) {
  // The first 50 us spin hard (the next layer is usually microseconds away). After that the
  // worker yields between looks: on a machine with other work the worker may share a core with
  // the caller, and a hard spin there would take the caller's time for nothing.
  const auto start = Clock::now();
  const auto hard_until = start + std::chrono::microseconds(spin_us_ < 50 ? spin_us_ : 50);
  const auto give_up = start + std::chrono::microseconds(spin_us_);
  bool hard = true;
  for (int i = 0;; ++i) {
    if (stop_.load(std::memory_order_relaxed)) return false;
    if (gen_of(state_.load(std::memory_order_acquire)) != seen) return true;
    if (parked_.load(std::memory_order_relaxed)) break;
    if (hard) {
      cpu_relax();
      if ((i & 63) != 63) continue;
      const auto now = Clock::now();
      if (now >= give_up) break;
      hard = now < hard_until;
    } else {
      std::this_thread::yield();
      if ((i & 7) == 7 && Clock::now() >= give_up) break;
    }
  }
  // Sleep. sleepers_ is raised before the last look at state_ and the caller publishes a step
  // before it reads sleepers_ (both sequentially consistent), so one of the two sees the other.
  // A wake() after this read wakes the worker (it spins again); one before it was meant for an
  // earlier sleep and is ignored, which costs nothing: a step always wakes sleepers itself.
  const uint32_t pokes = pokes_.load();
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_.fetch_add(1);
  wake_.wait(lock, [&] { return stop_.load() || gen_of(state_.load()) != seen || pokes_.load() != pokes; });
  sleepers_.fetch_sub(1);
  return !stop_.load();
}

void ThreadPool::steer_workers() {
#if defined(__linux__)
  const int cpu = sched_getcpu();
  if (cpu < 0 || cpu == steered_from_) return;
  cpu_set_t allowed;
  // The process's CPUs (a cpuset or taskset is respected); with nothing left once the caller's
  // is taken out, the workers keep what they have.
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || cpu >= CPU_SETSIZE) return;
  CPU_CLR(cpu, &allowed);
  if (CPU_COUNT(&allowed) == 0) return;
  for (size_t i = 1; i < worker_tids_.size(); ++i) {
    const int tid = worker_tids_[i].load(std::memory_order_acquire);
    if (tid > 0) sched_setaffinity(tid, sizeof(allowed), &allowed);
  }
  steered_from_ = cpu;
#endif
}

void ThreadPool::wake(bool steer) {
  if (workers_.empty()) return;
  if (steer) steer_workers();
  parked_.store(false, std::memory_order_relaxed);
  if (sleepers_.load() == 0) return;
  pokes_.fetch_add(1);
  { std::lock_guard<std::mutex> lock(mu_); }
  wake_.notify_all();
}

void ThreadPool::worker(int index) {
#if defined(__linux__)
  worker_tids_[static_cast<size_t>(index)].store(static_cast<int>(syscall(SYS_gettid)), std::memory_order_release);
#endif
  uint64_t seen = 0;
  for (;;) {
    if (!wait_for_step(seen)) return;
    seen = gen_of(state_.load(std::memory_order_acquire));
    run_tasks(seen, index);
  }
}

void ThreadPool::parallel_for(int tasks, TaskRef fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  // At most 2^20 - 1 claims per step; a bigger step gives each claim a run of tasks.
  const int per = static_cast<int>((static_cast<uint64_t>(tasks) + kClaimMask - 1) / kClaimMask);
  const uint64_t claims = (static_cast<uint64_t>(tasks) + per - 1) / per;
  parked_.store(false, std::memory_order_relaxed);
  fn_.store(&fn, std::memory_order_relaxed);
  tasks_.store(tasks, std::memory_order_relaxed);
  per_claim_.store(per, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  generation_ = (generation_ + 1) & kGenMask;
  if (generation_ == 0) generation_ = 1;  // 0 is what a new worker has seen
  steer_workers();
  // Each thread's own share of the claims, in order (the caller's at the front), so across a
  // chain of layers each thread keeps to the same part of the image.
  for (int i = 0; i < threads_; ++i) {
    const uint64_t lo = claims * static_cast<uint64_t>(i) / threads_, hi = claims * static_cast<uint64_t>(i + 1) / threads_;
    ranges_[static_cast<size_t>(i)].word.store(pack(generation_, hi, lo), std::memory_order_release);
  }
  state_.store(pack(generation_, 0, 0));
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    wake_.notify_all();
  }
  run_tasks(generation_, 0);
  // Only claimed tasks are waited for, and they are running now on some thread.
  for (int i = 0; done_.load(std::memory_order_acquire) < static_cast<int>(claims); ++i) {
    if (i < 4096) cpu_relax();
    else std::this_thread::yield();
  }
  fn_.store(nullptr, std::memory_order_relaxed);
}

}  // namespace edge::kernels

#pragma once
// A small fixed thread pool for intra-op parallelism (4-core boards). The calling thread
// takes part in the work, so ThreadPool(1) runs everything inline and starts no thread.
// parallel_for() does not allocate: the task is passed by reference (TaskRef) and the
// workers are started once in the constructor. One parallel_for at a time per pool: callers
// that run operations concurrently (several models) give each its own pool.
//
// Batch-1 inference is a chain of short parallel steps (MobileNetV2: ~100 of 10-100 us each),
// so a hand-off must cost well under a microsecond. Workers therefore spin on the pool's
// state for a while after each step (spin_us, default 1000 us; EDGE_POOL_SPIN_US overrides;
// a hard spin for the first 50 us, then yielding the core between looks)
// before sleeping on a condition variable, and the caller never waits for a worker that has
// not claimed a task. Each thread has its own share of a step's tasks, in order (the caller's
// first), in an atomic word on its own cache line holding the step's generation and the
// share's untaken range: a thread claims from the front of its own share, which no other core
// touches while it keeps up, so a claim moves no cache line, and each thread keeps to the same
// rows layer after layer. A thread whose share is done takes half of what is left of another's
// from its back, so a worker that is descheduled (an overloaded machine) or asleep costs the
// step nothing: the caller waits only for claimed tasks to finish. (One word shared by all,
// measured against this on 2 threads: 0.5-0.9 us more per step with empty tasks, and MobileNetV2,
// ResNet18 and MobileNetV3-Small 1-3% slower whole; the YOLO-like detector within 1%.)
//
// Workers are kept off the calling thread's CPU (Linux: at a step whose caller runs on another
// CPU than the last one, each worker's affinity becomes the process's CPUs less the caller's).
// Linux wakes a thread on its waker's CPU when it judges the two related, and a worker woken
// there shares that CPU with a caller that never blocks during an inference: measured on
// MobileNetV2 at 2 threads after another model ran (the workers slept meanwhile), the worker
// joined 0 of 54 steps in most of the next runs (3.2-3.5 ms against 2.0 ms) until the scheduler
// moved it; the bench's 2-thread p50 was 2.2-3.1 ms, 1.98 ms with the workers kept off.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace edge::kernels {

// A non-owning reference to a callable `void(int task, int thread)`; valid during the call.
class TaskRef {
 public:
  template <class F>
  TaskRef(F& f) : obj_(&f), call_([](void* o, int task, int thread) { (*static_cast<F*>(o))(task, thread); }) {}
  void operator()(int task, int thread) const { call_(obj_, task, thread); }

 private:
  void* obj_;
  void (*call_)(void*, int, int);
};

class ThreadPool {
 public:
  // threads <= 0 means the number of hardware threads.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Runs fn(task, thread) for task in [0, tasks); thread in [0, threads()) identifies the
  // worker so it can use its own slice of scratch. Returns when every task is done.
  void parallel_for(int tasks, TaskRef fn);

  // The caller has no further step for now (an inference ended): workers waiting for one sleep
  // at once instead of spinning, so they leave the cores to the threads that hand the result
  // on (the libuv thread and the event loop). The next parallel_for wakes them.
  void park() { parked_.store(true, std::memory_order_relaxed); }
  // A step is coming soon (an inference starts and copies its input first): sleeping workers
  // wake now and spin, so the first step does not wait for them to be scheduled (on a VM an
  // idle virtual CPU can take tens of microseconds to run again).
  // steer: keep the workers off the calling thread's CPU first (only the thread that will call
  // parallel_for may ask for it: the pool's other state is that thread's alone).
  void wake(bool steer = true);

  // The CPU the workers were last kept off (-1: never, or not Linux); for tests.
  int steered_from() const { return steered_from_; }

  static int hardware_threads();
  // How long a worker spins for the next step before it sleeps: EDGE_POOL_SPIN_US, else 1000.
  static int default_spin_us();

 private:
  void worker(int index);
  // Claims and runs tasks of generation `gen` until none is left; false when none was left.
  void run_tasks(uint64_t gen, int thread);
  // Waits for a generation other than `seen`: spins, then sleeps. False when stopping.
  bool wait_for_step(uint64_t seen);
  // Keeps the workers off the calling thread's CPU (see above); no-op off Linux.
  void steer_workers();

  int threads_;
  int spin_us_;
  std::vector<std::thread> workers_;
  // A thread's share of the current step's claims, on a cache line of its own:
  // generation (24 bits) | back (20 bits) | front (20 bits): claims [front, back) are untaken.
  struct alignas(64) Range {
    std::atomic<uint64_t> word{0};
  };
  std::vector<Range> ranges_;
  std::atomic<uint64_t> state_{0};  // the current step's generation (in the bits a range keeps it)
  std::atomic<const TaskRef*> fn_{nullptr};
  std::atomic<int> tasks_{0};  // tasks of the current step (a claim covers per_claim_ of them)
  std::atomic<int> per_claim_{1};
  std::atomic<int> done_{0};  // claims (units of per_claim_ tasks) finished in the current step
  uint64_t generation_ = 0;   // the caller's; workers read it from state_
  std::atomic<bool> stop_{false};
  std::atomic<bool> parked_{false};
  std::atomic<int> sleepers_{0};
  std::atomic<uint32_t> pokes_{0};  // wake() calls: a sleeping worker wakes without a step
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::atomic<int>> worker_tids_;  // Linux thread ids, 0 until a worker has started
  int steered_from_ = -1;                      // the CPU workers were last kept off
};

// Runs on `pool` when given, else inline on the calling thread (thread index 0).
template <class F>
inline void parallel_for(class ThreadPool* pool, int tasks, F&& f) {
  if (pool == nullptr || pool->threads() <= 1 || tasks <= 1) {
    for (int t = 0; t < tasks; ++t) f(t, 0);
    return;
  }
  pool->parallel_for(tasks, TaskRef(f));
}
inline int pool_threads(const ThreadPool* pool) { return pool ? pool->threads() : 1; }

// The process-wide pool for callers that each run one operation (the kernel API called from
// JavaScript): the hardware threads unless set, created on first use, one operation at a time.
// A caller that finds it busy runs alone on its own thread rather than wait for it, so
// concurrent calls never queue behind each other.
class SharedPool {
 public:
  // n <= 0: the number of hardware threads. Returns the count now in effect.
  int set_threads(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    configure_locked(n);
    return threads_.load();
  }
  // The count in effect, or the hardware threads before the first use.
  int threads() const {
    const int n = threads_.load();
    return n == 0 ? ThreadPool::hardware_threads() : n;
  }
  // Runs fn(pool) with the pool when it is free, else fn(nullptr): inline on the calling thread.
  template <class F>
  auto run(F&& fn) -> decltype(fn(static_cast<ThreadPool*>(nullptr))) {
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    if (lock.owns_lock()) {
      if (threads_.load() == 0) configure_locked(0);
      if (pool_) return fn(pool_.get());
    }
    return fn(static_cast<ThreadPool*>(nullptr));
  }

 private:
  void configure_locked(int n) {
    threads_ = n <= 0 ? ThreadPool::hardware_threads() : n;
    pool_ = threads_ > 1 ? std::make_unique<ThreadPool>(threads_) : nullptr;
  }
  std::mutex mu_;  // guards creation and use: one parallel_for at a time
  std::unique_ptr<ThreadPool> pool_;
  std::atomic<int> threads_{0};  // 0 until first use
};

}  // namespace edge::kernels

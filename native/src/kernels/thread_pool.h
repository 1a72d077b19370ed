#pragma once
// A small fixed thread pool for intra-op parallelism (4-core boards). The calling thread
// takes part in the work, so ThreadPool(1) runs everything inline and starts no thread.
// parallel_for() does not allocate: the task is passed by reference (FunctionRef) and the
// workers are started once in the constructor. One parallel_for at a time per pool: callers
// that run operations concurrently (several models) give each its own pool.
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

  static int hardware_threads();

 private:
  void worker(int index);
  void run_tasks(int thread);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  const TaskRef* fn_ = nullptr;
  int tasks_ = 0;
  std::atomic<int> next_{0};
  int busy_ = 0;
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

// API contracts: errors instead of damage (arena too small, bad arguments), the thread pool
// runs every task exactly once, variants that the CPU lacks are refused.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>

#if defined(__linux__)
#include <dirent.h>
#include <sched.h>
#endif

#include "kernels/kernels.h"
#include "test_util.h"

namespace edge::test {
using namespace edge::kernels;

void run_api_tests(Rng& rng) {
  // Thread pool: every task once, thread ids in range, reusable.
  {
    ThreadPool pool(3);
    for (int round = 0; round < 20; ++round) {
      const int tasks = rng.uniform(1, 200);
      std::vector<std::atomic<int>> seen(tasks);
      std::atomic<int> bad_thread{0};
      auto fn = [&](int t, int thread) {
        seen[t].fetch_add(1);
        if (thread < 0 || thread >= 3) bad_thread.fetch_add(1);
      };
      pool.parallel_for(tasks, TaskRef(fn));
      bool once = true;
      for (auto& s : seen) once = once && s.load() == 1;
      expect(once && bad_thread.load() == 0, fmt("thread pool round %d: %d tasks each ran once", round, tasks));
    }
  }
  // Back-to-back steps as an inference issues them (the workers spin between them), and the
  // same with workers that sleep after every step (EDGE_POOL_SPIN_US=0): no task is lost,
  // repeated or run after parallel_for returned, whatever the hand-off path.
  for (const char* spin : {"1000", "0"}) {
    setenv("EDGE_POOL_SPIN_US", spin, 1);
    ThreadPool pool(rng.uniform(2, 4));
    std::vector<int> counts(64);
    std::atomic<int> late{0};
    bool ok = true;
    for (int step = 0; step < 3000 && ok; ++step) {
      const int tasks = 1 + step % 64;
      std::fill(counts.begin(), counts.end(), 0);
      std::atomic<bool> returned{false};
      auto fn = [&](int t, int) {
        if (returned.load()) late.fetch_add(1);
        __atomic_fetch_add(&counts[t], 1, __ATOMIC_RELAXED);
      };
      pool.parallel_for(tasks, TaskRef(fn));
      returned.store(true);
      for (int t = 0; t < 64; ++t) ok = ok && counts[t] == (t < tasks ? 1 : 0);
    }
    expect(ok && late.load() == 0, fmt("thread pool, spin %s us: 3000 back-to-back steps each ran every task once, none after return", spin));
  }
  unsetenv("EDGE_POOL_SPIN_US");
  // Stealing: a thread held up in its own share does not hold the step up. In even rounds the
  // caller's first task waits (up to 10 s) until another thread has run a task of the caller's
  // own share, which only a thief can do; in odd rounds a worker's first task of its share
  // waits the same way for the caller to take one of that worker's tasks. Without stealing,
  // the waits time out.
  {
    ThreadPool pool(2);
    for (int round = 0; round < 20; ++round) {
      const int tasks = 64;
      std::vector<std::atomic<int>> ran_by(tasks);
      for (auto& r : ran_by) r.store(-1);
      std::atomic<bool> timed_out{false};
      auto wait_for = [&](int lo, int hi, bool by_worker) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
          for (int t = lo; t < hi; ++t) {
            const int who = ran_by[t].load();
            if (who >= 0 && (who != 0) == by_worker) return;
          }
          if (std::chrono::steady_clock::now() > until) {
            timed_out.store(true);
            return;
          }
          std::this_thread::yield();
        }
      };
      auto fn = [&](int t, int thread) {
        // One hold-up per round: both at once would wait for each other.
        if (round % 2 == 0 && t == 0 && thread == 0) wait_for(1, tasks / 2, /*by_worker=*/true);
        if (round % 2 == 1 && t == tasks / 2 && thread != 0) wait_for(tasks / 2 + 1, tasks, /*by_worker=*/false);
        ran_by[t].store(thread);
      };
      pool.parallel_for(tasks, TaskRef(fn));
      bool all = true;
      for (auto& r : ran_by) all = all && r.load() >= 0;
      if (!expect(all && !timed_out.load(), fmt("thread pool, round %d: threads held up in their own share had it taken by the other", round)))
        break;
    }
  }
  // park() between steps (an engine does it after each inference): the next step wakes the
  // sleeping workers and still runs every task once.
  {
    ThreadPool pool(3);
    bool ok = true;
    std::vector<int> counts(40);
    for (int step = 0; step < 500 && ok; ++step) {
      std::fill(counts.begin(), counts.end(), 0);
      auto fn = [&](int t, int) { __atomic_fetch_add(&counts[t], 1, __ATOMIC_RELAXED); };
      // Every other step is announced first (wake(): the workers leave their sleep with no
      // step to run yet), as an inference queued on the libuv pool does.
      if (step % 2 == 1) pool.wake(step % 4 == 1);
      pool.parallel_for(40, TaskRef(fn));
      pool.park();
      for (int c : counts) ok = ok && c == 1;
    }
    expect(ok, "thread pool: 500 steps each followed by park() (half of them announced by wake()) ran every task once");
  }
#if defined(__linux__)
  // Workers are kept off the caller's CPU (so a woken worker does not queue behind the caller):
  // after a step, the two threads this pool started have affinity masks without that CPU.
  {
    auto tids = [] {
      std::vector<int> out;
      if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d))
          if (e->d_name[0] != '.') out.push_back(std::atoi(e->d_name));
        closedir(d);
      }
      return out;
    };
    const std::vector<int> before = tids();
    cpu_set_t mine;
    sched_getaffinity(0, sizeof(mine), &mine);
    ThreadPool pool(3);
    auto fn = [&](int, int) {};
    pool.parallel_for(8, TaskRef(fn));
    const int cpu = pool.steered_from();
    if (CPU_COUNT(&mine) < 2) {
      expect(cpu == -1, "thread pool: with one CPU allowed the workers are left where they are");
    } else {
      int started = 0, without = 0;
      for (int tid : tids()) {
        if (std::find(before.begin(), before.end(), tid) != before.end()) continue;
        ++started;
        cpu_set_t m;
        if (sched_getaffinity(tid, sizeof(m), &m) == 0 && !CPU_ISSET(cpu, &m)) ++without;
      }
      expect(cpu >= 0 && started == 2 && without == 2,
             fmt("thread pool: its 2 workers avoid the caller's CPU %d (%d of %d started threads do)", cpu, without, started));
    }
  }
#endif
  // More tasks than one claim word counts (2^20): claims then cover runs of tasks.
  {
    ThreadPool pool(2);
    const int tasks = (1 << 20) + 12345;
    std::vector<uint8_t> seen(tasks, 0);
    auto fn = [&](int t, int) { seen[t]++; };
    pool.parallel_for(tasks, TaskRef(fn));
    bool once = true;
    for (uint8_t v : seen) once = once && v == 1;
    expect(once, "thread pool: 1,060,921 tasks (over the 2^20 claims a step holds) each ran once");
  }
  expect(ThreadPool::default_spin_us() == 1000, "the pool spins 1000 us by default");
  setenv("EDGE_POOL_SPIN_US", "banana", 1);
  expect(ThreadPool::default_spin_us() == 1000, "a malformed EDGE_POOL_SPIN_US is ignored");
  unsetenv("EDGE_POOL_SPIN_US");
  // GEMM refuses an arena smaller than gemm_scratch_bytes() and leaves the output alone.
  {
    std::vector<int8_t> b(64 * 40, 3);
    WeightsSource src;
    src.data = b.data();
    src.K = 64;
    src.N = 40;
    std::unique_ptr<PackedWeights> w;
    expect(pack_gemm_weights(src, &w).ok(), "pack 64x40");
    std::vector<uint8_t> a(7 * 64, 1), c(7 * 40, 0x77);
    const float scale = 0.01f;
    GemmArgs g;
    g.M = 7;
    g.a = a.data();
    g.c = c.data();
    g.out = OutputSpec::quantized(QType::U8, &scale, 1, 0);
    const size_t need = gemm_scratch_bytes(*w, 7, 1);
    std::vector<uint8_t> mem(need);
    Arena small(mem.data(), need / 2);
    Status st = gemm(*w, g, small);
    bool untouched = true;
    for (uint8_t v : c) untouched = untouched && v == 0x77;
    expect(!st.ok() && untouched, "gemm with a short arena fails and writes nothing");
    expect(small.mark() == 0, "a failed gemm leaves the arena as it found it");
    Arena enough(mem.data(), need);
    expect(gemm(*w, g, enough).ok() && enough.mark() == 0, "gemm with gemm_scratch_bytes() succeeds and releases its scratch");
    GemmArgs bad = g;
    bad.a_zero_point = 300;
    expect(!gemm(*w, bad, enough).ok(), "gemm refuses a uint8 zero point of 300");
    bad = g;
    bad.out.clamp_min = 200;
    bad.out.clamp_max = 100;
    expect(!gemm(*w, bad, enough).ok(), "gemm refuses clamp_min > clamp_max");
    // Per-channel multipliers: one bad value anywhere among the 40 is refused, whatever it is.
    {
      const float bads[] = {0.0f, -0.0f, -0.5f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::denorm_min()};
      std::vector<float> scales(40, 0.01f);
      bad = g;
      bad.out = OutputSpec::quantized(QType::U8, scales.data(), 40, 0);
      bool refused = gemm(*w, bad, enough).ok();
      for (float v : bads) {
        for (int at : {0, 17, 39}) {
          scales.assign(40, 0.01f);
          scales[at] = v;
          refused = refused && !gemm(*w, bad, enough).ok();
        }
      }
      scales.assign(40, std::numeric_limits<float>::max());
      refused = refused && gemm(*w, bad, enough).ok();
      expect(refused, "gemm takes 40 finite positive multipliers (FLT_MAX too) and refuses 0, -0, negatives, NaN and infinities at any channel");
    }
    src.zero_point_count = 3;
    expect(!pack_gemm_weights(src, &w).ok(), "pack refuses 3 zero points for N = 40");
    src.zero_point_count = 1;
    src.K = 40000;
    expect(!pack_gemm_weights(src, &w).ok(), "pack refuses K beyond the int32-exact limit");
  }
  // Conv shapes are checked.
  {
    ConvShape s;
    s.H = s.W = 4;
    s.C = 6;
    s.out_channels = 4;
    s.groups = 4;
    expect(check_conv_shape(s) != nullptr, "conv refuses groups that do not divide C");
    s.groups = 2;
    s.kernel_h = s.kernel_w = 7;
    expect(check_conv_shape(s) != nullptr, "conv refuses a kernel larger than the padded input");
  }
  // Variants: the active one is supported; an unsupported one is refused.
  {
    expect(variant_supported(active_variant()), fmt("active variant %s is supported", active_variant_name()));
    for (int i = 0; i < static_cast<int>(Variant::Count); ++i) {
      const Variant v = static_cast<Variant>(i);
      if (!variant_supported(v)) expect(!set_active_variant(v).ok(), fmt("set_active_variant(%s) refused here", variant_name(v)));
    }
  }
}

}  // namespace edge::test

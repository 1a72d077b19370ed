// `edge-fleet serve --stats <ms>`: one JSON line on stdout every <ms> with the process's RSS,
// its event-loop lag (p99 and max over the interval, from perf_hooks) and the controller's
// counters. For benchmarks and operators' scripts that watch a replica from outside
// (scripts/bench-fleet-scale.ts reads it during a reconnect storm).
import { monitorEventLoopDelay } from 'node:perf_hooks';

export function startStatsLines(everyMs: number, counters: () => Record<string, number>, write: (line: string) => void): () => void {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const timer = setInterval(() => {
    const stats = {
      t: Date.now(),
      rssMb: Math.round(process.memoryUsage.rss() / 1048576),
      lagP99Ms: Math.round(h.percentile(99) / 1e5) / 10,
      lagMaxMs: Math.round(h.max / 1e5) / 10,
      ...counters(),
    };
    h.reset();
    write(JSON.stringify({ stats }) + '\n');
  }, everyMs);
  timer.unref();
  return () => { clearInterval(timer); h.disable(); };
}

// How late the agent's event loop runs: a timer every 10 ms notes how much later than due it
// fired, into the histogram edge_agent_event_loop_lag_seconds (GET /metrics). A loop held for
// 100 ms misses nine ticks; each missed tick is recorded with the lag it would have seen
// (HdrHistogram's "corrected" recording), so the quantiles are shares of time, not of ticks
// that happened to run. (prom-client's nodejs_eventloop_lag_p99_seconds counts the 10 ms
// sampling interval itself and is reset by every scrape.)
import { prom } from '../metrics.js';
import type { AgentContext, Component } from '../component.js';

export const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The lags (ms) a tick that came `lagMs` late stands for: its own and those of the ticks it hid. */
export function lagSamples(lagMs: number, intervalMs: number): number[] {
  const out = [Math.max(0, lagMs)];
  for (let l = lagMs - intervalMs; l > 0; l -= intervalMs) out.push(l);
  return out;
}

export class EventLoopLag implements Component {
  readonly name = 'event-loop';
  readonly #histogram: InstanceType<typeof prom.Histogram>;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #last = 0;

  constructor(ctx: Pick<AgentContext, 'metrics'>, intervalMs = 10) {
    this.#intervalMs = intervalMs;
    this.#histogram = new prom.Histogram({
      name: 'edge_agent_event_loop_lag_seconds',
      help: `How much later than due a ${intervalMs} ms timer on the agent's event loop fired (ticks a held loop missed are counted with the lag they would have seen)`,
      buckets: LAG_BUCKETS,
      registers: [ctx.metrics],
    });
  }

  async start(): Promise<void> {
    this.#last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const ms of lagSamples(now - this.#last - this.#intervalMs, this.#intervalMs)) this.#histogram.observe(ms / 1000);
      this.#last = now;
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

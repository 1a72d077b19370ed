// Footprint: time from process start to ready, resident (RSS) and proportional (PSS) memory
// idle and under inference load, per backend. Idle is read twice: 1 s after ready (start-up
// garbage still in the heap) and steady, once V8 has run its first major collection after
// ready (its memory reducer does one after a few idle seconds; seen in /metrics).
import { spawnAgent } from '../../test/helpers/agent.js';
import { readFileSync } from 'node:fs';
import { memoryOf } from './procstat.js';
import { shippedRun, type ShippedRun } from './shipped.js';
import { heapOf } from './agent-metrics.js';
import { waitFor } from '../../test/helpers/wait.js';

const ortMapped = (pid: number): boolean => /libonnxruntime|onnxruntime_binding/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));

export interface FootprintResult {
  label: string;
  readyMs: number;
  /** RSS 1 s after ready. */
  startRssMb: number;
  /** Steady idle: after the first major collection after ready (or 20 s without one: idleGc false). */
  idleRssMb: number;
  idleGc: boolean;
  idlePssMb: number;
  loadRssMb?: number;
  loadPssMb?: number;
  inferences?: number;
  /** Whether the ONNX Runtime shared library was mapped into the process at the end. */
  ortLoaded: boolean;
  /** The node flags the agent ran with. */
  nodeArgs: string[];
}

export interface FootprintOptions {
  label: string;
  config: Record<string, unknown>;
  /** Runs load against the agent's URL for loadMs; returns the number of requests served. */
  load?: (url: string, loadMs: number) => Promise<number>;
  loadMs?: number;
  settleMs?: number;
  /** Node flags and environment; default: those of the shipped systemd unit. */
  run?: ShippedRun;
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

export async function measureFootprint(opts: FootprintOptions): Promise<FootprintResult> {
  const run = opts.run ?? shippedRun();
  const t0 = performance.now();
  const agent = spawnAgent(opts.config, { nodeArgs: run.nodeArgs, env: run.env });
  try {
    const url = await agent.ready(60_000);
    // The 'edge-agent listening' line is logged in the same tick that sends READY=1.
    const readyMs = Math.round(performance.now() - t0);
    const gcsAtReady = (await heapOf(url))?.majorGcs ?? 0;
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 1000)); // a measurement point (1 s after ready), not a condition
    const start = memoryOf(agent.proc.pid!)!;
    const idleGc = await waitFor(async () => ((await heapOf(url))?.majorGcs ?? 0) > gcsAtReady, { timeoutMs: 20_000, intervalMs: 500, what: 'an idle major GC' }).catch(() => false);
    const idle = memoryOf(agent.proc.pid!)!;
    const result: FootprintResult = {
      label: opts.label, readyMs, startRssMb: mb(start.rssKb), idleRssMb: mb(idle.rssKb), idlePssMb: mb(idle.pssKb), idleGc, ortLoaded: false, nodeArgs: run.nodeArgs,
    };
    if (opts.load) {
      let peak = idle;
      const timer = setInterval(() => {
        const m = memoryOf(agent.proc.pid!);
        if (m && m.rssKb > peak.rssKb) peak = m;
      }, 200);
      result.inferences = await opts.load(url, opts.loadMs ?? 3000);
      clearInterval(timer);
      result.loadRssMb = mb(peak.rssKb);
      result.loadPssMb = mb(peak.pssKb);
    }
    result.ortLoaded = ortMapped(agent.proc.pid!);
    return result;
  } finally {
    agent.kill('SIGTERM');
    await agent.exited();
  }
}

// Footprint: time from process start to ready, resident (RSS) and proportional (PSS) memory
// idle and under inference load, per backend.
import { spawnAgent } from '../../test/helpers/agent.js';
import { readFileSync } from 'node:fs';
import { memoryOf } from './procstat.js';
import { shippedRun, type ShippedRun } from './shipped.js';

const ortMapped = (pid: number): boolean => /libonnxruntime|onnxruntime_binding/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));

export interface FootprintResult {
  label: string;
  readyMs: number;
  idleRssMb: number;
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
    // The 'edge-agent ready' line is logged in the same tick that sends READY=1.
    const readyMs = Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 1000)); // let start-up garbage settle: a measurement window, not a condition
    const idle = memoryOf(agent.proc.pid!)!;
    const result: FootprintResult = { label: opts.label, readyMs, idleRssMb: mb(idle.rssKb), idlePssMb: mb(idle.pssKb), ortLoaded: false, nodeArgs: run.nodeArgs };
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

// bench:event-loop — the agent's event-loop lag while the YOLO-like detector (scripts/zoo/yolo-like.ts,
// ONNX Runtime) serves at full rate, side by side in one run: its session on the main thread, on a
// worker thread at the process's priority, and at runtime.offThreadNice 5 (the default) and 10. Each row is a real agent process (dist/: run `npm run build:ts` first) loaded over HTTP
// by clients posting back to back (/v2, binary tensors), with a /healthz probe beside them; the
// lag is the agent's own histogram (edge_agent_event_loop_lag_seconds) read from /metrics before
// and after. The idle row is the same agent before the load: what the machine itself costs.
//   npx tsx scripts/bench-event-loop.ts [seconds=10] [clients=3]
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { cpuFeatures } from '../agent/hardware.js';
import { writeYoloLikePackage } from './zoo/yolo-like.js';
import { spawnAgent } from '../test/helpers/agent.js';
import { driveDetector, lagBetween, lagBuckets } from '../test/helpers/detector-load.js';
import { tempDir } from '../test/helpers/model-packages.js';

const seconds = Number(process.argv[2] ?? 10);
const clients = Number(process.argv[3] ?? 3);
const pkg = writeYoloLikePackage(path.join(tempDir('edge-bench-yolo-'), 'detector'));

const rows: { name: string; runtime: Record<string, unknown> }[] = [
  { name: 'on the main thread', runtime: { offThreadAboveMs: 60_000 } },
  { name: 'worker thread, nice 0', runtime: { offThreadAboveMs: 2, offThreadNice: 0 } },
  { name: 'worker, nice 5 (default)', runtime: { offThreadAboveMs: 2, offThreadNice: 5 } },
  { name: 'worker thread, nice 10', runtime: { offThreadAboveMs: 2, offThreadNice: 10 } },
];

const ms = (s: number): string => (s * 1000).toFixed(1).padStart(7);
console.log(`bench:event-loop  YOLO-like 320x320 fp32 on ONNX Runtime, ${clients} clients back to back for ${seconds} s per row  node ${process.version}  ${process.platform}/${process.arch}`);
console.log(`cpu: ${cpus()[0]?.model} x${cpus().length}  features: ${cpuFeatures()}  load average before: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`${'placement'.padEnd(24)} ${'thread'.padEnd(7)} ${'warm-up'.padStart(8)} ${'inf/s'.padStart(6)}  lag p50 / p99 (ms) idle  lag p50 / p99 (ms) loaded  healthz max (ms)`);
const p99s: Record<string, number> = {};
for (const row of rows) {
  const agent = spawnAgent({ security: { requireSignedPackages: false }, runtime: row.runtime, models: [{ name: 'detector', package: pkg, backend: 'ort' }] });
  try {
    const url = await agent.ready(60_000);
    const deadline = Date.now() + 120_000;
    while ((await fetch(`${url}/readyz`)).status !== 200) {
      if (Date.now() > deadline || agent.logs.some((l) => l.msg === 'model package refused')) throw new Error(`the detector did not load: ${agent.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const status = (await (await fetch(`${url}/v1/status`)).json()) as { models: { models: { active: { backendDetails: Record<string, unknown> } }[] } };
    const details = status.models.models[0]!.active.backendDetails;
    const idleFrom = await lagBuckets(url);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = lagBetween(idleFrom, await lagBuckets(url));
    const before = await lagBuckets(url);
    const load = await driveDetector(url, 'detector', { clients, seconds, healthDeadlineMs: 5000 });
    const lag = lagBetween(before, await lagBuckets(url));
    if (load.failures.length) throw new Error(`${load.failures.length} inferences failed: ${load.failures[0]}`);
    p99s[row.name] = lag.quantile(0.99);
    const warm = typeof details.warmupRunMs === 'number' ? `${details.warmupRunMs.toFixed(1)}ms` : '-';
    console.log(`${row.name.padEnd(24)} ${String(details.thread).padEnd(7)} ${warm.padStart(8)} ${(load.requests / load.seconds).toFixed(1).padStart(6)}  ${ms(idle.quantile(0.5))} / ${ms(idle.quantile(0.99))}          ${ms(lag.quantile(0.5))} / ${ms(lag.quantile(0.99))}            ${Math.max(...load.health).toFixed(1)}`);
  } finally {
    agent.kill();
    await agent.exited();
  }
}
const on = p99s[rows[0]!.name]!;
const off = p99s[rows[2]!.name]!;
console.log(`loaded lag p99: main thread / worker thread (nice 5, the default) = ${(on / off).toFixed(2)}x   target: p99 < 20 ms off the main thread with the defaults: ${off < 0.02 ? 'met' : 'NOT met'} (${(off * 1000).toFixed(1)} ms)  load average after: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

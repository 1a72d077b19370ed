// Overload: more inference requests than the device serves. Admission (agent/runtime/
// admission.ts) answers 429 from the headers, before the body is read, beyond
// runtime.queueLimit or when the expected wait exceeds runtime.queueWaitFactor x the recent
// p99 service time; memory stays bounded; the p99 of admitted requests is compared with the
// unloaded p99 measured first in the same run by the same client process (the ratio is the
// figure; the issue asks for at most 2x). The notes split both p99s into queue wait, backend
// time, the rest inside the agent (Server-Timing) and the client's side, and give the
// agent's event-loop lag and CPU per request, so a miss can be attributed.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, RawInfer } from '../load.js';
import { percentile } from '../procstat.js';
import { FP32, INT8 } from '../../../test/helpers/model-packages.js';

export interface OverloadFigures extends Figures {
  unloadedP99Ms: number;
  admittedP99Ms: number;
  ratio: number;
  rejected: number;
  admitted: number;
  idleRssMb: number;
}

/**
 * CPU time the agent's main thread (the event loop: HTTP intake, and ONNX Runtime, which
 * onnxruntime-node runs synchronously on it) ran, and waited runnable on a run queue (ms,
 * /proc/PID/schedstat): waiting while runnable is CPU the machine did not give it.
 */
function schedMs(pid: number): { runMs: number; waitMs: number } {
  const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { runMs: run! / 1e6, waitMs: wait! / 1e6 };
}

const p99 = (xs: number[]): number => (xs.length ? Math.round(percentile(xs, 99) * 10) / 10 : NaN);

/** Agent CPU seconds and its event-loop lag p99 since the previous scrape (prom-client resets it). */
async function agentGauges(url: string): Promise<{ cpuS: number; lagP99Ms: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  // monitorEventLoopDelay samples every 10 ms; what it reports above that is the lag.
  return { cpuS: num('edge_agent_process_cpu_seconds_total'), lagP99Ms: Math.max(0, num('edge_agent_nodejs_eventloop_lag_p99_seconds') * 1000 - 10) };
}

/** Both engines: ONNX Runtime (onnxruntime-node runs on the event loop) and the native int8 engine (its own threads). */
export async function runBoth(opts: ScenarioOptions): Promise<OverloadFigures[]> {
  return [await run({ ...opts, backend: 'ort' }), await run({ ...opts, backend: 'native' })];
}

export async function run(opts: ScenarioOptions & { queueLimit?: number; queueWaitFactor?: number; maxRequestAgeMs?: number; offered?: number; backend?: 'ort' | 'native' }): Promise<OverloadFigures> {
  const backend = opts.backend ?? 'ort';
  const model = backend === 'ort' ? { name: 'digits', package: FP32, backend: 'ort' } : { name: 'digits', package: INT8, backend: 'native' };
  // One waiting beside the running one: with this 0.5 ms model the backend still always has
  // its next request (docs/reliability.md has the figures at 8).
  const queueLimit = opts.queueLimit ?? Number(process.env.OVERLOAD_QUEUE_LIMIT ?? 1);
  const queueWaitFactor = opts.queueWaitFactor ?? 1;
  const maxRequestAgeMs = opts.maxRequestAgeMs ?? Number(process.env.OVERLOAD_MAX_AGE_MS ?? 5);
  const rig = await new Rig({ agent: { models: [model], runtime: { threads: 1, queueLimit, queueWaitFactor, maxRequestAgeMs } } }).start();
  const clientLag = monitorEventLoopDelay({ resolution: 10 });
  // One lean client process for both phases (fetch() saturated the generator at these
  // rates), with at most 32 keep-alive connections (http-client.ts says why).
  const client = new RawInfer(rig.url, 'digits', 32, maxRequestAgeMs > 0);
  try {
    // Unloaded: one request at a time, for a fifth of the time.
    const solo: number[] = [];
    const soloQueue: number[] = [];
    const soloService: number[] = [];
    const soloAgentRest: number[] = [];
    const soloClient: number[] = [];
    const pid = rig.agent.proc.pid!;
    let before = await agentGauges(rig.url);
    let schedBefore = schedMs(pid);
    const soloStart = performance.now();
    const until = Date.now() + opts.durationMs / 5;
    let soloRefused = 0;
    while (Date.now() < until || solo.length < 50) {
      const r = await client.once();
      // A lone request may still be refused as too old when the machine held the agent off the CPU.
      if (r.status === 429 && r.body?.error?.message?.includes('maxRequestAgeMs')) {
        soloRefused++;
        continue;
      }
      if (r.status !== 200) throw new Error(`unloaded inference failed: ${r.status} ${JSON.stringify(r.body)}`);
      solo.push(r.ms);
      soloQueue.push(r.body.queueMs);
      soloService.push(r.body.latencyMs);
      soloAgentRest.push(r.agentMs! - r.body.queueMs - r.body.latencyMs);
      soloClient.push(r.ms - r.agentMs!);
    }
    let after = await agentGauges(rig.url);
    let schedAfter = schedMs(pid);
    const soloSched = `${((schedAfter.runMs - schedBefore.runMs) / ((performance.now() - soloStart) / 1000)).toFixed(0)}/${((schedAfter.waitMs - schedBefore.waitMs) / ((performance.now() - soloStart) / 1000)).toFixed(0)}`;
    const soloCpuMs = ((after.cpuS - before.cpuS) * 1000) / solo.length;
    const soloLag = after.lagP99Ms;
    const idleRss = rig.samplers[0]!.samples.at(-1)!.rssKb / 1024;
    // Offered: three times what one client in a closed loop gets served (the device's rate
    // for this model here and now, intake included), open loop.
    const soloRate = (solo.length * 1000) / solo.reduce((a, b) => a + b, 0);
    const offered = opts.offered ?? Math.ceil(3 * soloRate);
    before = await agentGauges(rig.url);
    schedBefore = schedMs(pid);
    const loadStart = performance.now();
    const clientCpu = process.cpuUsage();
    clientLag.enable();
    const inf = new InferenceLoad(() => rig.url, offered, client).start();
    const loadMs = (opts.durationMs * 4) / 5;
    await new Promise((r) => setTimeout(r, loadMs));
    await inf.stop();
    clientLag.disable();
    const clientCpuS = (process.cpuUsage(clientCpu).user + process.cpuUsage(clientCpu).system) / 1e6;
    after = await agentGauges(rig.url);
    schedAfter = schedMs(pid);
    const loadS = (performance.now() - loadStart) / 1000;
    const loadSched = `${((schedAfter.runMs - schedBefore.runMs) / loadS).toFixed(0)}/${((schedAfter.waitMs - schedBefore.waitMs) / loadS).toFixed(0)}`;
    const answered = inf.count(200) + inf.count(429);
    const unloaded = percentile(solo, 99);
    const admitted = inf.p99() ?? 0;
    const ratio = Math.round((admitted / unloaded) * 100) / 100;
    const served = inf.count(200);
    const agentRest = inf.agentMs.map((ms, i) => ms - inf.queueMs[i]! - inf.serviceMs[i]!);
    const clientSide = inf.latencies.map((ms, i) => ms - inf.agentMs[i]!);
    const f = await figuresOf(rig, {
      scenario: backend === 'ort' ? 'overload ort digits-fp32' : 'overload native digits-int8', load: `${offered} inf/s offered (3x), queueLimit ${queueLimit}, queueWaitFactor ${queueWaitFactor}${maxRequestAgeMs ? `, maxRequestAgeMs ${maxRequestAgeMs}` : ''}`, faults: 0, p99Ms: admitted,
      notes: `served ${served} (${Math.round(served / (loadMs / 1000))}/s, unloaded ${Math.round(soloRate)}/s), 429: ${inf.count(429)}, other: ${inf.failed([429])}; ${maxRequestAgeMs ? `unloaded refused as too old: ${soloRefused}; ` : ''}`
        + `unloaded p99 ${unloaded.toFixed(1)} ms, admitted p99 ${admitted.toFixed(1)} ms: ratio ${ratio}x (target <= 2x); `
        + `p99 unloaded/admitted: queue ${p99(soloQueue)}/${p99(inf.queueMs)}, backend ${p99(soloService)}/${p99(inf.serviceMs)}, agent other (intake, answer, event-loop waits) ${p99(soloAgentRest)}/${p99(agentRest)}, client and network ${p99(soloClient)}/${p99(clientSide)}, agent total ${p99(soloService.map((_, i) => soloAgentRest[i]! + soloQueue[i]! + soloService[i]!))}/${p99(inf.agentMs)} ms; `
        + `agent event-loop lag p99 ${soloLag.toFixed(1)}/${after.lagP99Ms.toFixed(1)} ms, agent CPU per request ${soloCpuMs.toFixed(2)}/${(((after.cpuS - before.cpuS) * 1000) / Math.max(1, answered)).toFixed(2)} ms (200 and 429 alike); agent main thread ran/waited runnable ${soloSched} / ${loadSched} ms per s; `
        + `client CPU ${((clientCpuS * 1000) / Math.max(1, answered)).toFixed(2)} ms per request, client event-loop lag p99 ${Math.max(0, clientLag.percentile(99) / 1e6 - 10).toFixed(1)} ms, ${client.connections} connections`,
    });
    return { ...f, unloadedP99Ms: unloaded, admittedP99Ms: admitted, ratio, rejected: inf.count(429), admitted: served, idleRssMb: Math.round(idleRss * 10) / 10 };
  } finally {
    clientLag.disable();
    client.close();
    await rig.stop();
  }
}

// Issue 18, item 7: a big model never holds the event loop. A real agent process serves the
// YOLO-like detector (scripts/zoo/yolo-like.ts, about 2 GFLOP a run) on ONNX Runtime while this
// test drives it at full rate over HTTP (clients posting back to back, binary tensors); the
// agent's own event-loop lag histogram (GET /metrics) must show p99 under 20 ms over the load,
// and /healthz must answer every probe within its deadline. (The native engine cannot run this
// fp32 detector yet: it needs the int8 Resize/Split/Softmax work of issue 18, so ONNX Runtime
// only here.) Also: the metric itself sees a held loop, so a passing p99 is not a blind one.
import t from 'tap';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { EventLoopLag, lagSamples } from '../agent/health/event-loop-lag.js';
import { writeYoloLikePackage } from '../scripts/zoo/yolo-like.js';
import { spawnAgent } from './helpers/agent.js';
import { driveDetector, lagBetween, lagBuckets } from './helpers/detector-load.js';
import { tempDir } from './helpers/model-packages.js';
import { WaitAbort, waitFor } from './helpers/wait.js';

t.setTimeout(240_000);

const LAG_P99_S = 0.02;
/** A probe's deadline: what a supervisor (a Kubernetes probe's timeoutSeconds default) allows. */
const HEALTH_DEADLINE_MS = 1000;

t.test('a held loop shows in the lag histogram, missed ticks included', async (t) => {
  t.same(lagSamples(35, 10), [35, 25, 15, 5], 'a tick 35 ms late stands for three missed ticks as well');
  t.same(lagSamples(-0.3, 10), [0], 'an early tick is no lag');
  const registry = new Registry();
  const lag = new EventLoopLag({ metrics: registry });
  await lag.start();
  t.teardown(() => lag.stop());
  const url = 'registry:';
  const read = async () => {
    const text = await registry.metrics();
    return new Map(text.split('\n').flatMap((l) => {
      const m = /^edge_agent_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/.exec(l);
      return m ? [[m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])] as const] : [];
    }));
  };
  const before = await read();
  const until = performance.now() + 120;
  while (performance.now() < until); // hold the loop for 120 ms
  await waitFor(async () => ((await read()).get(Infinity) ?? 0) > (before.get(Infinity) ?? 0), { what: `a lag sample after the hold (${url})` });
  const seen = lagBetween(before, await read());
  t.ok(seen.count - seen.within(0.05) >= 5, `the 120 ms hold left ${seen.count - seen.within(0.05)} samples above 50 ms (of ${seen.count})`);
});

t.test('the YOLO-like detector at full rate on ONNX Runtime leaves the event loop free', async (t) => {
  const pkg = writeYoloLikePackage(path.join(tempDir('edge-yolo-'), 'detector'));
  // An unsigned package generated here: signature checks are another test's concern.
  const agent = spawnAgent({ security: { requireSignedPackages: false }, models: [{ name: 'detector', package: pkg, backend: 'ort' }] });
  t.teardown(() => agent.kill());
  const url = await agent.ready(60_000);
  await waitFor(async () => {
    const refused = agent.logs.find((l) => l.msg === 'model package refused');
    if (refused) throw new WaitAbort(`the detector was refused: ${String(refused.err)}`);
    return (await fetch(`${url}/readyz`)).status === 200;
  }, { timeoutMs: 60_000, what: 'the detector to load and warm up' });
  const status = (await (await fetch(`${url}/v1/status`)).json()) as { models: { models: { name: string; active: { backendDetails: Record<string, unknown> } }[] } };
  const details = status.models.models.find((m) => m.name === 'detector')!.active.backendDetails;
  t.equal(details.thread, 'worker', 'the detector is served from a worker thread');
  t.match(details.threadReason, /warm-up run takes [\d.]+ ms, above runtime\.offThreadAboveMs \(2 ms\)/, `/v1/status says why: ${details.threadReason}`);
  const chosen = await agent.waitForLog((l) => l.msg === 'backend chosen' && l.model === 'detector', 5000, 'the backend choice in the log');
  t.equal((chosen.details as Record<string, unknown>).thread, 'worker', 'the log says so too');

  // The machine's own share: the same agent idle. Where other processes already hold the CPU
  // so that an idle loop misses the bound, the bound cannot be shown here (said, not passed).
  const idleFrom = await lagBuckets(url);
  await new Promise((r) => setTimeout(r, 3000)); // a measuring window, not a wait for a condition
  const idle = lagBetween(idleFrom, await lagBuckets(url));
  const idleP99 = idle.quantile(0.99);

  const before = await lagBuckets(url);
  const load = await driveDetector(url, 'detector', { clients: 3, seconds: 8, probeMs: 100, healthDeadlineMs: HEALTH_DEADLINE_MS });
  const lag = lagBetween(before, await lagBuckets(url));
  t.same(load.failures, [], 'every inference answered 200');
  t.ok(load.requests >= 3, `${load.requests} inferences in ${load.seconds.toFixed(1)} s (${(load.requests / load.seconds).toFixed(1)}/s, 3 clients back to back)`);
  t.ok(lag.count >= 100, `${lag.count} lag samples over the load`);
  const p99 = lag.quantile(0.99);
  const verdict = `event-loop lag p99 ${(p99 * 1000).toFixed(1)} ms under load (${lag.within(LAG_P99_S)} of ${lag.count} samples within 20 ms; idle ${(idleP99 * 1000).toFixed(1)} ms)`;
  // The bound is the on a machine that is not overloaded. This test's own load (the
  // detector's thread, the agent, three clients) is about two runnable threads; beyond the cores
  // plus those, other processes (tap's parallel files in CI) take the CPU the loop needs, and
  // the figure is theirs (npm run bench:event-loop measures it on a quiet machine).
  const cores = cpus().length;
  const load1 = loadavg()[0]!;
  const busy = idle.within(LAG_P99_S) < 0.99 * idle.count
    ? `the idle agent already misses 20 ms on this machine (${cores} cores, load average ${load1.toFixed(1)})`
    : load1 > cores + 2 ? `the machine is overloaded (load average ${load1.toFixed(1)} on ${cores} cores, this test adds about 2)` : '';
  t.ok(lag.within(LAG_P99_S) >= 0.99 * lag.count, `${verdict} < 20 ms`, {
    skip: busy ? `${busy}, so the bound cannot be shown here` : false,
  });
  const late = load.health.filter((ms) => !(ms < HEALTH_DEADLINE_MS));
  t.ok(load.health.length >= 10, `${load.health.length} /healthz probes during the load`);
  t.same(late, [], `every /healthz probe answered within ${HEALTH_DEADLINE_MS} ms (slowest ${Math.max(...load.health).toFixed(1)} ms)`);
});

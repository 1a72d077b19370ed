// The outage test: the broker goes away while the agent records telemetry at a steady rate
// and comes back later (seconds here, minutes in the field). The controller must end with
// every record exactly once after de-duplication, each stream in order; re-sent duplicates
// are counted and reported.
import t from 'tap';
import { chmodSync } from 'node:fs';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { makeAgent, startAgent, startController, tempDir } from './fleet-support.js';
import { Backoff, backlogDelay } from '../agent/fleet/backoff.js';
import type { BatchEvent } from '../controller/serve.js';

t.test('broker outage: every record arrives exactly once, in order per stream', async (t) => {
  // Persistence keeps the controller's session (its subscription and queued messages)
  // across the broker restart, as a production broker does.
  const broker = await startMosquitto({ persistence: true });
  t.teardown(() => destroyMosquitto(broker));
  chmodSync(broker.dir, 0o777); // mosquitto started as root writes its persistence file as user mosquitto
  const c = await startController(broker.url, { clientId: 'ctl-outage' });
  t.teardown(() => c.stop());
  const arrivals = new Map<string, number[]>();
  c.ctl.on('batch', (b: BatchEvent) => {
    const list = arrivals.get(b.stream) ?? [];
    list.push(...b.storedSeqs);
    arrivals.set(b.stream, list);
  });
  const a = await startAgent(broker.url, 'tele-dev', { mqtt: { drainRecordsPerSecond: 3000, batchMaxBytes: 4096, inflight: 4 } });
  t.teardown(() => a.stop());

  const recorded = new Map<string, number[]>([['metrics', []], ['events', []]]);
  let i = 0;
  const timer = setInterval(() => {
    i++;
    recorded.get('metrics')!.push(a.agent.telemetry.record('metrics', { i, cpu: (i % 100) / 100 }));
    if (i % 3 === 0) recorded.get('events')!.push(a.agent.telemetry.record('events', { i, kind: 'tick' }));
  }, 4);
  t.teardown(() => clearInterval(timer));
  const total = (): number => recorded.get('metrics')!.length + recorded.get('events')!.length;

  await waitFor(() => c.store.telemetrySummary('tele-dev').reduce((n, s) => n + s.records, 0) >= 50, { timeoutMs: 15_000, what: 'records flowing before the outage' });
  await broker.stop();
  await waitFor(() => a.link.state !== 'connected', { timeoutMs: 10_000, what: 'the agent to notice the outage' });
  const atOutage = total();
  await waitFor(() => total() >= atOutage + 300, { timeoutMs: 20_000, what: 'records buffered during the outage' });
  t.equal(a.link.state === 'connected', false, 'still offline while recording');
  t.ok(a.agent.telemetry.stats().depth > 0, 'the records wait in the buffer');
  const ready = await fetch(`${a.agent.url}/readyz`);
  const body = await ready.json() as { ready: boolean; warnings: string[] };
  t.equal(ready.status, 200, 'an absent broker does not make the agent unready');
  t.match(body.warnings.join('\n'), /fleet: broker .* unreachable/, 'it is a warning on /readyz');
  const status = await (await fetch(`${a.agent.url}/v1/status`)).json() as { fleet: { state: string; broker: string } };
  t.match(status.fleet, { state: 'reconnecting', broker: broker.url }, '/v1/status shows the broker state');
  await broker.restart();
  await waitFor(() => a.link.state === 'connected', { timeoutMs: 20_000, what: 'the agent to reconnect' });
  const atReconnect = total();
  await waitFor(() => total() >= atReconnect + 100, { what: 'more records after the reconnect' });
  clearInterval(timer);

  for (const [stream, seqs] of recorded) {
    await waitFor(() => c.store.telemetry('tele-dev', { stream }).length >= seqs.length,
      { timeoutMs: 60_000, what: () => `${seqs.length} ${stream} records at the controller (has ${c.store.telemetry('tele-dev', { stream }).length})` });
    const stored = c.store.telemetry('tele-dev', { stream }).map((r) => r.seq);
    t.same(stored, seqs, `${stream}: exactly the ${seqs.length} recorded records, each once`);
    const order = arrivals.get(stream) ?? [];
    t.ok(order.every((s, k) => k === 0 || s > order[k - 1]), `${stream}: stored in sequence order`);
  }
  const summary = c.store.telemetrySummary('tele-dev');
  const duplicates = summary.reduce((n, s) => n + s.duplicates, 0);
  t.comment(`records: ${total()}, re-sent duplicates dropped by the controller: ${duplicates}, batches: ${summary.reduce((n, s) => n + s.batches, 0)}, leases nacked at the disconnect: ${a.link.status().telemetry && (a.link.status().telemetry as { nackedOnDisconnect: number }).nackedOnDisconnect}`);
  t.equal(c.store.telemetry('tele-dev').length, total(), 'no record beyond the recorded ones');
  await waitFor(() => a.agent.telemetry.stats().depth === 0, { what: 'the agent buffer to drain (records leave it only on PUBACK)' });
  t.pass('the agent buffer drained');
});

t.test('a backlog drains at the configured rate, not faster', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const c = await startController(broker.url);
  t.teardown(() => c.stop());
  const dir = tempDir('edge-fleet-rate-');
  t.teardown(() => dir.remove());
  // Recorded while offline: 1,500 records wait in the buffer.
  const offline = makeAgent(undefined, 'rate-dev', {}, dir.dir);
  await offline.agent.start();
  for (let i = 0; i < 1500; i++) offline.agent.telemetry.record('metrics', { i });
  await offline.agent.telemetry.flush();
  await offline.stop();
  const rate = 500;
  const online = makeAgent(broker.url, 'rate-dev', { mqtt: { drainRecordsPerSecond: rate, batchMaxBytes: 2048 } }, dir.dir);
  t.teardown(() => online.stop());
  await online.agent.start();
  await waitFor(() => online.link.state === 'connected', { what: 'connected' });
  const t0 = Date.now();
  const stored = (): number => c.store.telemetry('rate-dev').length;
  // Whatever the machine's speed, the bucket allows at most one second of burst plus the rate.
  let maxOver = -Infinity;
  await waitFor(() => {
    const elapsed = (Date.now() - t0) / 1000;
    maxOver = Math.max(maxOver, stored() - (rate * (elapsed + 1) + 100)); // 100: records in flight when sampled
    return stored() >= 1500;
  }, { timeoutMs: 30_000, intervalMs: 50, what: 'the backlog delivered' });
  const seconds = (Date.now() - t0) / 1000;
  const biggest = Math.max(...c.store.batches().map((b) => b.records));
  t.ok(maxOver <= biggest, `never ahead of ${rate} records/s plus a one-second burst, by more than one batch of ${biggest} (worst: ${maxOver.toFixed(0)} over)`);
  t.ok(seconds >= (1500 - rate - 100 - biggest) / rate, `took ${seconds.toFixed(1)} s for 1,500 records`);
});

t.test('reconnect delays: capped exponential backoff with full jitter', async (t) => {
  const draws = [0, 1, 0.5, 0, 1, 1, 1, 1, 1];
  let k = 0;
  const b = new Backoff(100, 1000, () => draws[k++ % draws.length]);
  const caps: number[] = [];
  const delays = Array.from({ length: 9 }, () => { caps.push(b.capMs); return b.next(); });
  // cap doubles 100, 200, 400, 800, 1000...; each delay is uniform in [0, cap] (at least 1 ms).
  t.same(caps, [100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000]);
  t.same(delays, [1, 200, 200, 1, 1000, 1000, 1000, 1000, 1000]);
  b.reset();
  t.equal(b.capMs, 100, 'reset starts again from the minimum');
  b.toCap();
  t.equal(b.capMs, 1000, 'a busy broker: the cap jumps to the maximum at once');
  b.next();
  t.equal(b.capMs, 1000, 'and stays there');
  b.reset();
  t.equal(b.capMs, 100, 'until a lasting connection resets it');
  // Full jitter: 1,000 devices at cap 60 s spread over the whole window, about N/cap per second.
  const fleet = Array.from({ length: 1000 }, () => new Backoff(60_000, 60_000).next());
  const perTenth = Array.from({ length: 10 }, (_, i) => fleet.filter((d) => d >= i * 6000 && d < (i + 1) * 6000).length);
  t.ok(perTenth.every((n) => n > 50 && n < 150), `each tenth of the window gets about 100 of 1,000 (${perTenth.join(' ')})`);
});

t.test('the backlog after a reconnection waits a random share of its window, never more than the reconnect cap', async (t) => {
  t.equal(backlogDelay(5000, 60_000, () => 0), 0);
  t.equal(backlogDelay(5000, 60_000, () => 1), 5000);
  t.equal(backlogDelay(5000, 60_000, () => 0.5), 2500);
  t.equal(backlogDelay(5000, 500, () => 1), 500, 'at most reconnectMaxMs');
  t.equal(backlogDelay(0, 60_000, () => 1), 0, '0 = at once');
});

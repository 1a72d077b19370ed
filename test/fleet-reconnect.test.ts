// Reconnects that a broker can survive (issue 20, item 3): a refused CONNECT is tried again;
// after "server busy" the device waits up to mqtt.reconnectMaxMs at once instead of retrying
// from the minimum, and its backoff starts again from the minimum only after a connection has
// lasted mqtt.stableAfterMs.
// The busy broker is a few lines of TCP that answer CONNECT with an MQTT 5 CONNACK refusal,
// beside the real Mosquitto of the second test.
import t, { type Test } from 'tap';
import { createServer, type Socket } from 'node:net';
import { spawnAgent } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);

/** A listener that refuses every MQTT 5 CONNECT with `reason` (CONNACK: flags 0, reason, no properties). */
async function refusingBroker(t: Test, reason: number): Promise<{ url: string; connects: () => number }> {
  let connects = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', (d) => {
      if ((d[0]! >> 4) !== 1) return s.destroy(); // not a CONNECT
      connects++;
      s.end(Buffer.from([0x20, 0x03, 0x00, reason, 0x00]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { sockets.forEach((s) => s.destroy()); server.close(); });
  const port = (server.address() as { port: number }).port;
  return { url: `mqtt://127.0.0.1:${port}`, connects: () => connects };
}

const retries = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'fleet broker not reachable; retrying');

for (const [reason, name, busy] of [[0x89, 'server busy', true], [0x9f, 'connection rate exceeded', true], [0x87, 'not authorized', false]] as const) {
  t.test(`CONNACK ${name} (0x${reason.toString(16)}): ${busy ? 'the cap jumps to reconnectMaxMs' : 'the backoff doubles from reconnectMinMs as usual'}`, async (t) => {
    const broker = await refusingBroker(t, reason);
    const agent = spawnAgent({ mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 4000 } });
    t.teardown(() => agent.kill('SIGKILL'));
    await agent.ready();
    const first = await agent.waitForLog((l) => l.msg === 'fleet broker not reachable; retrying', 20_000, 'the first failed attempt');
    t.equal(first.attempt, 1);
    if (busy) {
      t.equal(first.capMs, 4000, 'after one refusal the cap is already reconnectMaxMs');
      const said = agent.logs.find((l) => l.msg === 'fleet broker is overloaded; backing off to mqtt.reconnectMaxMs');
      t.match(said, { reason: name, capMs: 4000 }, 'and the log says why');
    } else {
      t.equal(first.capMs, 100, 'after one refusal the cap has only doubled');
      // The attempts that follow come quickly: 2 and 4 within a few hundred ms of backoff.
      await agent.waitForLog((l) => l.msg === 'fleet broker not reachable; retrying' && l.attempt === 4, 20_000, 'attempt 4');
      t.same(retries(agent.logs).map((l) => l.capMs), [100, 200, 800], 'caps 100, 200, 800 at attempts 1, 2, 4');
    }
    t.ok(Number(first.retryInMs) >= 1 && Number(first.retryInMs) <= Number(first.capMs), `the delay ${first.retryInMs} ms is within [0, cap]`);
    // A refused CONNECT is tried again (mqtt.js would otherwise stop after one refusal).
    await waitFor(() => broker.connects() >= 2, { timeoutMs: 20_000, what: 'a second CONNECT after the refusal' });
    t.equal(agent.proc.exitCode, null, 'the agent keeps running');
  });
}

t.test('the backoff starts again from the minimum only after the connection lasted stableAfterMs', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const agent = spawnAgent({ mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 1000, stableAfterMs: 3000 } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const fleet = async () => ((await (await fetch(`${url}/v1/status`)).json()) as { fleet: { state: string; reconnectAttempt: number; connectedSince: string | null } }).fleet;
  await waitFor(async () => (await fleet()).state === 'connected', { timeoutMs: 15_000, what: 'connected' });

  await broker.stop();
  await waitFor(async () => (await fleet()).reconnectAttempt >= 3, { timeoutMs: 20_000, what: 'three failed attempts while the broker is down' });
  await broker.restart();
  const back = await waitFor(async () => { const f = await fleet(); return f.state === 'connected' ? f : undefined; }, { timeoutMs: 20_000, what: 'connected again' });
  t.ok(back.reconnectAttempt >= 3, `just after the reconnection the backoff is kept (attempt ${back.reconnectAttempt})`);
  const resetAt = await waitFor(async () => ((await fleet()).reconnectAttempt === 0 ? Date.now() : undefined), { timeoutMs: 20_000, what: 'the backoff reset' });
  const lasted = resetAt - Date.parse(back.connectedSince!);
  t.ok(lasted >= 2900, `reset once the connection had lasted ${lasted} ms (stableAfterMs 3000)`);
});

// A connect attempt that never completes (TCP accepted, no CONNACK) is dropped after
// mqtt.connectTimeoutMs and retried; meanwhile the log, /readyz and /v1/status say so. The
// broker is a real Mosquitto behind a TCP relay that swallows the first connections.
import t from 'tap';
import net from 'node:net';
import { spawnAgent } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';

/** Holds the first `swallow` connections open without a byte in reply; relays the rest. */
async function relay(port: number, swallow: number): Promise<{ url: string; accepted: () => number; close(): void }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    if (++accepted <= swallow) return;
    const up = net.connect(port, '127.0.0.1');
    sockets.add(up);
    up.on('error', () => s.destroy());
    s.pipe(up).pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    accepted: () => accepted,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

t.test('a connect without CONNACK times out, is retried, and is visible meanwhile', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const r = await relay(broker.port, 2);
  t.teardown(() => r.close());
  const agent = spawnAgent({
    deviceId: 'hung-connect',
    log: { level: 'info' },
    security: { requireSignedPackages: false },
    mqtt: { url: r.url, connectTimeoutMs: 1500, reconnectMinMs: 50, reconnectMaxMs: 100, stableAfterMs: 500 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();

  // While the first attempt hangs, the agent serves and says the broker is not there.
  const status = (await (await fetch(`${url}/v1/status`)).json()) as { fleet: { state: string; reconnectAttempt: number; lastError: string | null } };
  t.equal(status.fleet.state, 'connecting', `/v1/status: still connecting (${JSON.stringify(status.fleet)})`);
  const ready = await fetch(`${url}/readyz`);
  const body = (await ready.json()) as { warnings: string[] };
  t.equal(ready.status, 200, 'an absent broker does not make the agent unready');
  t.match(body.warnings.join(' '), /broker .* unreachable/, `/readyz warns (${body.warnings.join('; ')})`);

  const failed = await agent.waitForLog((l) => l.msg === 'fleet broker not reachable; retrying', 10_000, 'the failed attempt in the log');
  t.match(failed, { level: 40, attempt: 1, err: 'connack timeout' }, 'the first failed attempt is a warning naming the timeout');
  const again = (await (await fetch(`${url}/v1/status`)).json()) as typeof status;
  t.match(again.fleet, { lastError: 'connack timeout' }, '/v1/status names the last error');
  t.ok(again.fleet.reconnectAttempt >= 1, `and counts the attempts (${again.fleet.reconnectAttempt})`);

  // The third attempt reaches the broker.
  const connected = await agent.waitForLog((l) => l.msg === 'connected to the fleet broker', 15_000, 'connected');
  t.ok(connected, 'connected after the hung attempts were dropped');
  t.ok(r.accepted() >= 3, `three attempts or more (${r.accepted()})`);
  const after = (await (await fetch(`${url}/v1/status`)).json()) as typeof status;
  t.match(after.fleet, { state: 'connected', lastError: null }, 'and /v1/status says so');
  // The backoff starts from the minimum again once the connection lasted stableAfterMs.
  await waitFor(async () => ((await (await fetch(`${url}/v1/status`)).json()) as typeof status).fleet.reconnectAttempt === 0, { what: 'the backoff reset after a lasting connection' });
  t.notMatch(((await (await fetch(`${url}/readyz`)).json()) as { warnings: string[] }).warnings.join(' '), /unreachable/, 'the warning is gone');
  agent.kill('SIGTERM');
  await agent.exited();
});

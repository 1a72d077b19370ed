// The connection drops after the CONNACK but before the broker saw the device's SUBSCRIBE,
// and the broker keeps the (subscription-less) session: on the next connection, with
// "session present", the device must subscribe again. mqtt.js's own resubscribe bookkeeping
// marked the topics subscribed when the SUBSCRIBE was sent and then skipped them for good:
// no commands and no telemetry acks reached the device (found by the disk-full soak, whose
// broker stops right after the agent starts). Real Mosquitto; a relay in between cuts the
// first connection at the device's first SUBSCRIBE packet.
import t from 'tap';
import net from 'node:net';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, watcher } from './fleet-support.js';

/** Forwards MQTT both ways; on its first connection, drops everything from the first SUBSCRIBE on. */
async function cutAtFirstSubscribe(upstreamPort: number): Promise<{ url: string; cuts: () => number; close(): void }> {
  let cuts = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const close = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    upstream.pipe(client);
    if (++connections > 1) {
      client.pipe(upstream);
      return;
    }
    let buf = Buffer.alloc(0);
    client.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // Split whole packets: fixed header byte, remaining length (varint), body.
      for (;;) {
        let len = 0;
        let mult = 1;
        let i = 1;
        for (; i < buf.length && i <= 4; i++) {
          len += (buf[i]! & 0x7f) * mult;
          mult *= 128;
          if ((buf[i]! & 0x80) === 0) break;
        }
        if (i >= buf.length || buf.length < i + 1 + len) return;
        const packet = buf.subarray(0, i + 1 + len);
        buf = buf.subarray(i + 1 + len);
        if (packet[0]! >> 4 === 8) { // SUBSCRIBE: the broker never sees it
          cuts++;
          close();
          return;
        }
        upstream.write(packet);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `mqtt://127.0.0.1:${port}`, cuts: () => cuts, close: () => { for (const s of sockets) s.destroy(); server.close(); } };
}

t.test('a SUBSCRIBE lost with the connection is sent again on the next one, session or not', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const relay = await cutAtFirstSubscribe(broker.port);
  t.teardown(() => relay.close());
  const c = await startController(broker.url);
  t.teardown(() => c.stop());

  const a = await startAgent(relay.url, 'resub-dev');
  t.teardown(() => a.stop());
  await waitFor(() => relay.cuts() === 1 && a.link.state === 'connected' && (a.link.status().connects as number) >= 2,
    { timeoutMs: 15_000, what: 'the first connection cut at its SUBSCRIBE, then a second one' });

  // Telemetry acks come back on a subscription: the buffer drains only if it exists.
  for (let i = 0; i < 5; i++) a.agent.telemetry.record('metrics', { i });
  await a.agent.telemetry.flush();
  a.link.kickTelemetry();
  await waitFor(() => a.agent.telemetry.stats().depth === 0, {
    timeoutMs: 20_000, what: () => `the controller's acks reaching the device (${JSON.stringify(a.link.status().telemetry)})`,
  });
  t.equal(c.store.telemetry('resub-dev', { stream: 'metrics' }).length, 5, 'the controller has the five records');
  t.equal((a.link.status().telemetry as { ackTimeouts: number }).ackTimeouts, 0, 'acked the first time, no re-send');

  // And commands.
  const w = await watcher(broker.url, ['edge/v1/resub-dev/cmd/res']);
  t.teardown(() => w.close());
  await w.client.publishAsync('edge/v1/resub-dev/cmd', JSON.stringify({ id: 'p-1', name: 'ping' }), { qos: 1 });
  await waitFor(() => w.messages.length > 0, { timeoutMs: 10_000, what: 'the ping reply' });
  t.match(JSON.parse(w.messages[0]!.payload.toString()), { id: 'p-1', ok: true }, 'a command reaches the device and is answered');
});

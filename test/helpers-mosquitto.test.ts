import t from 'tap';
import mqtt from 'mqtt';
import { startMosquitto, destroyMosquitto } from './helpers/mosquitto.js';
import { within } from './helpers/wait.js';

t.setTimeout(60_000);

t.test('the test broker is a real Mosquitto speaking MQTT 5 and survives a restart', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 50 });
  t.teardown(() => client.endAsync());
  await client.subscribeAsync('t/x', { qos: 1 });
  const got = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(payload.toString())));
  await client.publishAsync('t/x', 'hello', { qos: 1 });
  t.equal(await got, 'hello', 'a QoS 1 message comes back through the broker');
  // Listen before the restart: with a 50 ms reconnect period the client can be back before
  // restart() resolves, and a listener attached after that would wait for ever.
  const reconnected = new Promise<void>((resolve) => client.once('close', () => client.once('connect', () => resolve())));
  await broker.restart();
  await within(reconnected, 20_000, 'the client to reconnect after the broker restart');
  t.ok(client.connected, 'the client reconnects after the broker restarts');
});

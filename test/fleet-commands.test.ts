// Commands over a real Mosquitto with the standard command-line tools as the controller:
// MQTT 5 response topic + correlation data, the fixed reply topic without them, and a
// repeated id answered from the cache without acting twice.
import t from 'tap';
import { spawn } from 'node:child_process';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, watcher } from './fleet-support.js';
import { generateKeyPair } from '../agent/security/signing.js';
import { signCommand } from '../agent/security/command-signing.js';
import { connectFleet } from '../controller/connect.js';
import { sendCommand } from '../controller/requests.js';

function run(cmd: string, args: string[]): { done: Promise<number>; out: () => string } {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  return { done: new Promise((r) => p.on('exit', (code) => r(code ?? -1))), out: () => out };
}

t.test('commands with mosquitto_pub / mosquitto_sub as the client', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  // No fleet controller here (the command-line tools play it), so nothing acks telemetry
  // end to end: the PUBACK confirms, as with a controller that does not ack.
  const a = await startAgent(broker.url, 'cmd-dev-1', { mqtt: { telemetryAck: 'broker' } });
  t.teardown(() => a.stop());
  const port = String(broker.port);

  await t.test('MQTT 5: reply on the response topic with the correlation data', async (t) => {
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-t', 'edge/v1/cmd-dev-1/cmd/res/ops42', '-C', '1', '-W', '20', '-F', '%D|%p']);
    // mosquitto_sub subscribes in parallel: send (new ids, each acts once) until it has printed a reply.
    let n = 0;
    await waitFor(async () => {
      const pub = run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-q', '1', '-t', 'edge/v1/cmd-dev-1/cmd',
        '-m', JSON.stringify({ id: `req-${++n}`, name: 'ping' }),
        '-D', 'publish', 'response-topic', 'edge/v1/cmd-dev-1/cmd/res/ops42', '-D', 'publish', 'correlation-data', `corr-${n}`]);
      t.equal(await pub.done, 0, `mosquitto_pub ran: ${pub.out()}`);
      return sub.out().includes('|');
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'a reply seen by mosquitto_sub' });
    const code = await sub.done;
    const line = sub.out().trim().split('\n').pop() ?? '';
    t.equal(code, 0, `mosquitto_sub got a message: ${sub.out()}`);
    const [corr, json] = [line.slice(0, line.indexOf('|')), line.slice(line.indexOf('|') + 1)];
    const reply = JSON.parse(json) as { id: string; ok: boolean; result: { pong: boolean } };
    t.match(reply, { id: /^req-\d+$/, ok: true, result: { pong: true } });
    t.equal(corr, `corr-${reply.id.slice(4)}`, 'the correlation data of that request comes back unchanged');
  });

  await t.test('without a response topic the reply goes to edge/v1/{id}/cmd/res', async (t) => {
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', port, '-t', 'edge/v1/cmd-dev-1/cmd/res', '-C', '1', '-W', '20']);
    const w = await watcher(broker.url, ['edge/v1/cmd-dev-1/cmd/res'], 4);
    t.teardown(() => w.close());
    // Send until mosquitto_sub (subscribing in parallel) has seen a reply: ids differ, each acts once.
    let n = 0;
    await waitFor(async () => {
      const pub = run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311', '-q', '1', '-t', 'edge/v1/cmd-dev-1/cmd',
        '-m', JSON.stringify({ id: `req-311-${++n}`, name: 'models.list' })]);
      await pub.done;
      return sub.out().includes('"ok"');
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'a reply seen by mosquitto_sub' });
    const reply = JSON.parse(sub.out().trim().split('\n')[0]) as { id: string; ok: boolean; result: unknown };
    t.match(reply.id, /^req-311-\d+$/);
    t.equal(reply.ok, true);
    t.ok(Array.isArray(reply.result), 'models.list answers a list');
  });

  await t.test('a repeated id returns the stored reply and does not act twice', async (t) => {
    let runs = 0;
    a.link.commands.register('test.count', { description: 'counts its runs', run: () => ({ runs: ++runs }) });
    const w = await watcher(broker.url, ['edge/v1/cmd-dev-1/cmd/res']);
    t.teardown(() => w.close());
    for (let i = 0; i < 3; i++) {
      await w.client.publishAsync('edge/v1/cmd-dev-1/cmd', JSON.stringify({ id: 'same-id', name: 'test.count' }), { qos: 1 });
    }
    const mine = (): { id: string; result: { runs: number } }[] =>
      w.messages.map((m) => JSON.parse(m.payload.toString()) as { id: string; result: { runs: number } }).filter((r) => r.id === 'same-id');
    await waitFor(() => mine().length >= 3, { what: 'three replies' });
    const replies = mine();
    t.same(replies.map((r) => r.result.runs), [1, 1, 1], 'every reply is the first one');
    t.equal(runs, 1, 'the command ran once');
    t.equal((a.link.status().commands as { repeats: number }).repeats, 2);
  });

  await t.test('status and telemetry.flush answer', async (t) => {
    const w = await watcher(broker.url, ['edge/v1/cmd-dev-1/cmd/res']);
    t.teardown(() => w.close());
    a.agent.telemetry.record('metrics', { x: 1 });
    await w.client.publishAsync('edge/v1/cmd-dev-1/cmd', JSON.stringify({ id: 's-1', name: 'status' }), { qos: 1 });
    await w.client.publishAsync('edge/v1/cmd-dev-1/cmd', JSON.stringify({ id: 'f-1', name: 'telemetry.flush', args: { timeoutMs: 10_000 } }), { qos: 1 });
    const byId = (): Map<string, { id: string; ok: boolean; result: Record<string, unknown> }> =>
      new Map(w.messages.map((m) => { const r = JSON.parse(m.payload.toString()) as { id: string; ok: boolean; result: Record<string, unknown> }; return [r.id, r]; }));
    await waitFor(() => byId().has('s-1') && byId().has('f-1'), { what: 'both replies' });
    t.match(byId().get('s-1'), { ok: true, result: { deviceId: 'cmd-dev-1', state: 'online', protocol: 'edge/v1' } });
    t.equal(byId().get('f-1')?.ok, true, JSON.stringify(byId().get('f-1')));
    t.equal(a.agent.telemetry.stats().depth, 0, 'the buffer is empty after the flush');
  });
});

t.test('signed commands: a device that requires signatures refuses unsigned ones', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const keys = generateKeyPair();
  const a = await startAgent(broker.url, 'cmd-signed', { security: { requireSignedPackages: false, commands: { requireSignature: true, controllerKeys: [keys.publicKeyPem] } } });
  t.teardown(() => a.stop());
  const c = await connectFleet(broker.url, { clientId: 'signer', clean: true });
  t.teardown(() => c.client.endAsync());
  const signed = await sendCommand(c.client, c.protocolVersion, 'cmd-signed', 'ping', {}, { sign: (cmd) => signCommand(cmd, 'cmd-signed', keys.privateKeyPem) });
  t.match(signed, { ok: true, result: { pong: true } }, 'a signed command runs');
  const unsigned = await sendCommand(c.client, c.protocolVersion, 'cmd-signed', 'ping', {});
  t.match(unsigned, { ok: false, error: { code: 'EDGE_COMMAND_SIGNATURE' } }, 'an unsigned one is refused with the signature error');
});

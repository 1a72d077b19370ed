// Bad input from the broker side never crashes either end: malformed JSON, huge payloads,
// wrong types and unknown commands get error replies; a bad desired state is refused; a
// chunk with a bad hash fails the download (reported), and the agent keeps serving. The
// controller refuses malformed telemetry and keeps storing good batches.
import t from 'tap';
import { createHash } from 'node:crypto';
import { encodeFrame } from '../protocol/frame.js';
import { encodeBatch } from '../protocol/telemetry-batch.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startAgent, startController, watcher } from './fleet-support.js';

interface Reply { id: string | null; ok: boolean; result?: unknown; error?: { code: string; message: string } }

t.test('bad input from the broker side', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const a = await startAgent(broker.url, 'bad-dev', { mqtt: { requestTimeoutMs: 1000 } });
  t.teardown(() => a.stop());
  const w = await watcher(broker.url, ['edge/v1/bad-dev/cmd/res', 'edge/v1/bad-dev/models/reported', 'edge/v1/bad-dev/artifacts/req']);
  t.teardown(() => w.close());
  const replies = (): Reply[] => w.messages.filter((m) => m.topic.endsWith('/cmd/res')).map((m) => JSON.parse(m.payload.toString()) as Reply);
  const send = (payload: string | Buffer, props?: Record<string, unknown>): Promise<unknown> =>
    w.client.publishAsync('edge/v1/bad-dev/cmd', payload, { qos: 1, ...(props ? { properties: props } : {}) });

  await t.test('commands', async (t) => {
    const cases: [string, string | Buffer, RegExp | null, string][] = [
      ['malformed JSON', '{"id": "x", "name": ', null, 'EDGE_FLEET_BAD_COMMAND'],
      ['a JSON array', '[1,2,3]', null, 'EDGE_FLEET_BAD_COMMAND'],
      ['huge payload', JSON.stringify({ id: 'huge', name: 'ping', args: { pad: 'x'.repeat(200_000) } }), null, 'EDGE_FLEET_PAYLOAD_TOO_LARGE'],
      ['id of the wrong type', JSON.stringify({ id: 42, name: 'ping' }), null, 'EDGE_FLEET_BAD_COMMAND'],
      ['name of the wrong type', JSON.stringify({ id: 'n1', name: ['ping'] }), /^n1$/, 'EDGE_FLEET_BAD_COMMAND'],
      ['args of the wrong type', JSON.stringify({ id: 'a1', name: 'models.rollback', args: [1] }), /^a1$/, 'EDGE_FLEET_BAD_ARGS'],
      ['args failing the schema', JSON.stringify({ id: 'a2', name: 'models.activate', args: { name: 5 } }), /^a2$/, 'EDGE_FLEET_BAD_ARGS'],
      ['an unknown command', JSON.stringify({ id: 'u1', name: 'rm -rf /' }), /^u1$/, 'EDGE_FLEET_UNKNOWN_COMMAND'],
    ];
    for (const [what, payload, id, code] of cases) {
      const before = replies().length;
      await send(payload);
      const r = await waitFor(() => replies()[before], { what: `a reply to ${what}` });
      t.equal(r.ok, false, `${what}: refused`);
      t.equal(r.error?.code, code, `${what}: ${r.error?.message}`);
      if (id) t.match(r.id, id, `${what}: carries the request id`);
      else t.ok(r.id === null || r.id === 'huge', `${what}: no usable id`);
      t.ok((r.error?.message.length ?? 0) > 10, `${what}: says what was expected`);
    }
    const unknown = replies().find((r) => r.id === 'u1')!;
    t.match(unknown.error?.message, /known: .*ping/, 'the unknown-command reply lists the known commands');
    // A response topic with wildcards is not published to: the reply goes to the fixed topic.
    const before = replies().length;
    await send(JSON.stringify({ id: 'wild', name: 'ping' }), { responseTopic: 'x/#', correlationData: Buffer.from('c') });
    const r = await waitFor(() => replies().slice(before).find((x) => x.id === 'wild'), { what: 'reply on the fixed topic' });
    t.equal(r.ok, true);
  });

  await t.test('a desired state that is not valid is refused and changes nothing', async (t) => {
    await w.client.publishAsync('edge/v1/bad-dev/models/desired', '{"v":1,"models":[{"name":"digits","version":"1.0.0","sha256":"nothex","size":-1}]}', { qos: 1 });
    await waitFor(() => /ignored desired state/.test(String(a.link.status().lastError)), { what: 'the refusal noted in status' });
    t.match(String(a.link.status().lastError), /sha256/, 'names the bad field');
    await w.client.publishAsync('edge/v1/bad-dev/models/desired', 'not json at all', { qos: 1 });
    await waitFor(() => /not valid JSON/.test(String(a.link.status().lastError)), { what: 'malformed JSON refused' });
    t.same(a.link.modelSync?.reports(), [], 'no model sync started');
  });

  await t.test('a chunk with a bad hash fails the download; the agent keeps running', async (t) => {
    // A broken "controller": the right manifest, but chunk 1 arrives damaged every time.
    const artifact = Buffer.alloc(3 * 1024, 7);
    const chunks = [0, 1, 2].map((i) => artifact.subarray(i * 1024, (i + 1) * 1024));
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    let badServed = 0;
    w.client.on('message', (topic, payload) => {
      if (topic !== 'edge/v1/bad-dev/artifacts/req') return;
      const req = JSON.parse(payload.toString()) as { id: string; op: string; index?: number };
      const res = 'edge/v1/bad-dev/artifacts/res';
      if (req.op === 'manifest') {
        void w.client.publishAsync(res, encodeFrame({ id: req.id, ok: true, manifest: { sha256: sha(artifact), size: artifact.length, chunkSize: 1024, chunks: chunks.map(sha) } }), { qos: 1 });
      } else {
        const body = Buffer.from(chunks[req.index!]);
        if (req.index === 1) { body[0] ^= 1; badServed++; }
        void w.client.publishAsync(res, encodeFrame({ id: req.id, ok: true, index: req.index }, body), { qos: 1 });
        void w.client.publishAsync(res, Buffer.from([0, 0, 0xff, 0xff, 1]), { qos: 1 }); // and a malformed frame
      }
    });
    await w.client.publishAsync('edge/v1/bad-dev/models/desired', JSON.stringify({ v: 1, models: [{ name: 'broken', version: '1.0.0', sha256: sha(artifact), size: artifact.length }] }), { qos: 1, retain: true });
    const failed = await waitFor(() => a.link.modelSync?.reports().find((m) => m.name === 'broken' && m.state === 'failed'), { timeoutMs: 20_000, what: 'the download to fail' });
    t.equal(failed.code, 'EDGE_FLEET_CHUNK_HASH', failed.reason ?? 'no reason');
    t.match(failed.reason, /chunk 1 failed its sha256 check/);
    t.equal(badServed, 3, 'the damaged chunk was asked for 3 times, then the download gave up');
    const reported = await waitFor(() => w.messages.filter((m) => m.topic.endsWith('/models/reported')).map((m) => JSON.parse(m.payload.toString()) as { models: { name: string; state: string }[] })
      .find((d) => d.models.some((m) => m.name === 'broken' && m.state === 'failed')), { what: 'failed on models/reported' });
    t.ok(reported, 'the failure is reported to the fleet');
    await w.client.publishAsync('edge/v1/bad-dev/models/desired', '', { qos: 1, retain: true });
  });

  await t.test('the controller refuses malformed telemetry and keeps storing', async (t) => {
    const c = await startController(broker.url);
    t.teardown(() => c.stop());
    await w.client.publishAsync('edge/v1/bad-dev/telemetry/metrics', 'definitely not gzip', { qos: 1 });
    await w.client.publishAsync('edge/v1/bad-dev/status', '{"state":', { qos: 1 });
    await waitFor(() => c.store.rejected().length >= 2, { what: 'two rejections' });
    t.match(c.store.rejected().map((r) => r.reason).join('\n'), /gzip/, 'the telemetry rejection says what was expected');
    await w.client.publishAsync('edge/v1/bad-dev/telemetry/metrics', encodeBatch('metrics', [{ seq: 1_000_000, ts: Date.now(), payload: { ok: 1 } }]), { qos: 1 });
    a.agent.telemetry.record('metrics', { after: 'bad input' });
    await waitFor(() => c.store.telemetry('bad-dev').length >= 2, { what: 'good batches still stored' });
    t.pass('good batches are stored after bad ones');
  });

  await t.test('the agent still answers', async (t) => {
    const before = replies().length;
    await send(JSON.stringify({ id: 'alive', name: 'ping' }));
    const r = await waitFor(() => replies().slice(before).find((x) => x.id === 'alive'), { what: 'ping reply' });
    t.equal(r.ok, true);
    t.equal(a.link.state, 'connected');
    t.equal(a.agent.state, 'running');
  });
});

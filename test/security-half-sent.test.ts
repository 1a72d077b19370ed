// Half-sent requests do not lock clients out of inference (issue 26, item 5): 70 connections
// that send the headers of an inference request (and a few bytes of body) and then nothing
// held every admission place until health.requestTimeoutMs (30 s), and every real request got
// 429. A request now counts against admission only once its body has arrived. Real parts: the
// agent daemon serving the fp32 digits model on ONNX Runtime.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { spawnAgent } from './helpers/agent.js';
import { digitBatch, FP32 } from './helpers/model-packages.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(90_000);

const BATCH = digitBatch(0, 4);
const BODY = JSON.stringify({ inputs: { input: { shape: BATCH.shape, base64: Buffer.from(BATCH.data.buffer, BATCH.data.byteOffset, BATCH.data.byteLength).toString('base64') } } });

t.test('70 half-sent requests leave inference open to real clients', async (t) => {
  const agent = spawnAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false }, runtime: { threads: 1 } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: 'the model ready' });
  const admission = async (): Promise<{ inFlight: number; queueLimit?: number }> => ((await (await fetch(`${url}/v1/models/digits`)).json()) as any).admission;
  t.comment(`admission: ${JSON.stringify(await admission())}`);

  const { hostname, port } = new URL(url);
  const open: Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));
  let connected = 0;
  for (let i = 0; i < 70; i++) {
    const s = connect(Number(port), hostname, () => { connected++; });
    s.on('error', () => undefined);
    s.write(`POST /v1/models/digits/infer HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY.slice(0, 10)}`);
    open.push(s);
  }
  await waitFor(() => connected === 70, { what: '70 half-sent requests connected' });
  // The agent has read their headers once a later request on a new connection is answered.
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
    statuses.push(r.status);
    await r.arrayBuffer();
  }
  t.same([...new Set(statuses)], [200], `every real request is served while 70 half-sent ones hang (${statuses.join(' ')})`);
  t.equal((await admission()).inFlight, 0, 'the half-sent requests hold no admission place');
  t.ok(open.every((s) => !s.destroyed), 'while they are still open');
});

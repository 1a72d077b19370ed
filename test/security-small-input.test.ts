// Smaller items of issue 26 (item 8) against the real daemon: a bad percent-escape in the URL
// gets the agent's error envelope, not fastify's; an input element written 1e400 (beyond
// float64, parsed as Infinity) is reported as such, not as "got null".
import t from 'tap';
import { spawnAgent } from './helpers/agent.js';
import { FP32 } from './helpers/model-packages.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(60_000);

t.test('bad URLs and out-of-range numbers get clear errors in the agent\'s envelope', async (t) => {
  const agent = spawnAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false }, runtime: { threads: 1 } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { what: 'the model ready' });

  for (const path of ['/v1/models/%E0%A4%A/infer', '/v1/models/%zz']) {
    const r = await fetch(`${url}${path}`, { method: path.endsWith('infer') ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body: path.endsWith('infer') ? '{}' : undefined });
    const body = (await r.json()) as { error?: { code?: string; message?: string } };
    t.equal(r.status, 400, `${path}: 400`);
    t.equal(body.error?.code, 'EDGE_BAD_REQUEST', `${path}: the agent's code (${JSON.stringify(body)})`);
    t.match(body.error?.message, /percent-escapes/, `${path}: says what was expected`);
  }

  const data = new Array(784).fill(0).join(',').replace(/^0/, '1e400');
  const r = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"inputs":{"input":{"shape":[1,1,28,28],"data":[${data}]}}}` });
  const body = (await r.json()) as { error?: { code?: string; message?: string } };
  t.equal(r.status, 400, '1e400: 400');
  t.match(body.error?.message, /got Infinity \(a number beyond the float64 range, such as 1e400\) at element 0/, `1e400 named as such: ${body.error?.message}`);
  t.notMatch(body.error?.message, /got null/, 'not "got null"');
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'the agent keeps running');
});

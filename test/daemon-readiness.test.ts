// The daemon's log says "ready" only when /readyz does. It logs "edge-agent listening" when
// the HTTP server is up, and "edge-agent ready" once every configured model has warmed up;
// a model that cannot load leaves it "not ready yet", naming what it waits for, as /readyz does.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnAgent } from './helpers/agent.js';
import { copyPackage, FP32 } from './helpers/model-packages.js';

t.setTimeout(120_000);

t.test('a model that loads: listening, then ready, and /readyz agrees', async (t) => {
  const agent = spawnAgent({ deviceId: 'pi-ready-1', models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const ready = await agent.waitForLog((l) => l.msg === 'edge-agent ready', 30_000, 'edge-agent ready');
  t.equal(ready.url, url, 'the ready line names the URL');
  t.ok(agent.logs.indexOf(ready) > agent.logs.findIndex((l) => l.msg === 'edge-agent listening'), 'listening comes first');
  const res = await fetch(`${url}/readyz`);
  t.equal(res.status, 200, '/readyz: 200 once the log says ready');
});

t.test('a model that cannot load: listening, not ready yet (saying why), never ready, like /readyz', async (t) => {
  const broken = copyPackage(FP32, t.testdir({}));
  writeFileSync(path.join(broken, 'model.onnx'), 'not a model'); // its sha256 no longer matches the manifest
  const agent = spawnAgent({ deviceId: 'pi-ready-2', models: [{ name: 'broken', package: broken }], security: { requireSignedPackages: false } });
  t.teardown(() => agent.kill('SIGKILL'));
  const url = await agent.ready();
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { reasons: string[] };
  t.equal(res.status, 503, '/readyz: 503');
  const waiting = await agent.waitForLog((l) => /^edge-agent not ready/.test(String(l.msg)) && (l.waitingFor as string[]).join('; ') === body.reasons.join('; '), 30_000, 'the log naming what /readyz names');
  t.match((waiting.waitingFor as string[]).join('; '), /model broken failed to load/, `the log says what readiness waits for: ${JSON.stringify(waiting)}`);
  t.notOk(agent.logs.some((l) => l.msg === 'edge-agent ready'), 'the log never says ready while /readyz is 503');
  agent.kill('SIGTERM');
  t.equal((await agent.exited()).code, 0, 'it still stops cleanly');
  t.notOk(agent.logs.some((l) => l.msg === 'edge-agent ready'), 'nor on the way out');
});

// The dashboard's learning view (issue 21 item 2): per model version, the examples and labels
// that arrived and the labels per class, from the telemetry the controller stored; the inputs
// stay in the database. The page's table is checked in test/ui-dashboard.test.ts.
import t from 'tap';
// One SQLite file and one in-process request: well under a second.
t.setTimeout(30_000);
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetStore } from '../controller/store.js';
import { buildDashboard } from '../controller/dashboard/server.js';

t.test('examples, labels and labels per class, per model version', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-dash-learning-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FleetStore(path.join(dir, 'fleet.db'));
  t.teardown(() => store.close());
  const app = buildDashboard({ store });
  t.teardown(() => app.close());
  t.same((await app.inject('/api/learning')).json(), [], 'nothing arrived, no rows');

  const ts = Date.now();
  const ex = (i: number, version: string) => ({ seq: i, ts, payload: { id: `e${i}`, model: 'digits', version, inputs: { x: { dtype: 'float32', shape: [1], base64: 'AAAAAA==' } } } });
  const fb = (i: number, version: string, label: unknown) => ({ seq: i, ts, payload: { id: `e${i}`, model: 'digits', version, label, correct: true } });
  store.ingestBatch('dev-1', 'examples', [ex(1, '1.0.0'), ex(2, '1.0.0'), ex(3, '1.0.0'), ex(4, '2.0.0')]);
  store.ingestBatch('dev-2', 'examples', [ex(1, '1.0.0')]);
  store.ingestBatch('dev-1', 'feedback', [fb(1, '1.0.0', 3), fb(2, '1.0.0', 3), fb(3, '1.0.0', 'seven'), fb(5, '1.0.0', [1, 3]), fb(6, '2.0.0', 0)]);
  store.ingestBatch('dev-1', 'inference', [{ seq: 1, ts, payload: { model: 'digits', version: '1.0.0' } }]);
  store.ingestBatch('dev-1', 'metrics', [{ seq: 1, ts, payload: 'not an object' }]);
  const rows = (await app.inject('/api/learning')).json();
  t.same(rows, [
    { model: 'digits', version: '1.0.0', examples: 4, labels: 4, perClass: { 1: 1, 3: 3, seven: 1 } },
    { model: 'digits', version: '2.0.0', examples: 1, labels: 1, perClass: { 0: 1 } },
  ], 'counts per version; a multi-row label counts each row; other streams are not counted');
  t.notMatch(JSON.stringify(rows), /AAAA/, 'no input in the view');
});

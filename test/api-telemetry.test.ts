// Local applications record telemetry through the agent: the answer comes after the commit.
import t from 'tap';
import Database from 'better-sqlite3';
import path from 'node:path';
import { postJson, startAgent } from './helpers/model-packages.js';

t.test('POST /v1/telemetry/:stream answers with sequence numbers once the records are committed', async (t) => {
  const a = await startAgent({});
  t.teardown(() => a.stop());
  const one = await postJson(`${a.url}/v1/telemetry/events`, { payload: { door: 'open' }, priority: 6 });
  t.equal(one.status, 201);
  t.equal(one.body.seqs.length, 1);
  const many = await postJson(`${a.url}/v1/telemetry/samples`, { records: [{ payload: 1 }, { payload: 2 }, { payload: 3 }] });
  t.equal(many.status, 201);
  t.same(many.body.seqs, [one.body.seqs[0] + 1, one.body.seqs[0] + 2, one.body.seqs[0] + 3], 'one sequence per device, in order');
  // Read the SQLite file itself: what was acknowledged is on disk.
  const file = path.join(a.agent.config.dataDir, a.agent.config.telemetry.file);
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
  const table = tables.find((n) => /record/.test(n));
  t.ok(table, `a records table exists (${tables.join(', ')})`);
  const count = (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  t.ok(count >= 4, `the four records are in the database file (${count})`);
});

t.test('bad telemetry bodies are refused with what was expected', async (t) => {
  const a = await startAgent({});
  t.teardown(() => a.stop());
  const cases: [string, unknown, RegExp][] = [
    ['events', [1, 2], /must be a JSON object/],
    ['events', { records: [] }, /non-empty array/],
    ['events', { payload: 1, priority: 12 }, /"priority" must be a whole number 0..9/],
    ['events', { payload: 1, extra: true }, /unknown key "extra"/],
    ['events', { records: [{ nope: 1 }] }, /record 0: unknown key "nope"/],
    ['events', { records: [{ priority: 1 }] }, /record 0: missing "payload"/],
    ['Bad Stream', { payload: 1 }, /not a valid name/],
  ];
  for (const [stream, body, msg] of cases) {
    const r = await postJson(`${a.url}/v1/telemetry/${encodeURIComponent(stream)}`, body);
    t.equal(r.status, 400, JSON.stringify(body));
    t.match(r.body.error.message, msg);
  }
  const ok = await postJson(`${a.url}/v1/telemetry/events`, { payload: 'still here' });
  t.equal(ok.status, 201, 'the agent keeps accepting after bad requests');
});

// One contract for the controller's database: the same cases against SQLite (the embedded
// default) and a real PostgreSQL 15 started for this file (test/helpers/postgres.ts).
import t, { type Test } from 'tap';
import path from 'node:path';
import pg from 'pg';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { SqliteControllerStore } from '../controller/store/sqlite.js';
import { PostgresControllerStore } from '../controller/store/postgres.js';
import { partitions, partitionName, ensurePartitions } from '../controller/store/pg-partitions.js';
import type { ControllerStore } from '../controller/store/types.js';
import { FleetErrors } from '../protocol/errors.js';
import { buildDataset } from '../controller/dataset.js';

t.setTimeout(120_000);

let server: Postgres | undefined;
let dbCount = 0;

interface Backend {
  name: string;
  /** A fresh empty store, and a function that opens the same database again. */
  make(t: Test): Promise<{ store: ControllerStore; reopen(): Promise<ControllerStore> }>;
}


const backends: Backend[] = [
  {
    name: 'sqlite',
    async make(t) {
      const file = path.join(t.testdir(), 'fleet.db');
      return { store: SqliteControllerStore.open(file), reopen: async () => SqliteControllerStore.open(file) };
    },
  },
  {
    name: 'postgres',
    async make() {
      server ??= await startPostgres();
      const url = await server.createDatabase(`contract_${++dbCount}`);
      return { store: await PostgresControllerStore.open(url, { flushMs: 50 }), reopen: () => PostgresControllerStore.open(url) };
    },
  },
];

t.teardown(() => server?.stop());

const status = (state: string, extra: Record<string, unknown> = {}) => ({ state, agentVersion: '1.0.0', models: [], ...extra });
const reported = (models: { name: string; version: string; state?: string }[]) => ({ v: 1, models: models.map((m) => ({ state: 'active', ...m })) });
const driftDoc = {
  format: 'edge-drift-report/1', deviceId: 'dev-1', model: 'digits', version: '1.0.0', verdict: 'ok',
  window: { seq: 1, start: '2026-01-01T00:00:00Z', end: '2026-01-01T00:01:00Z', size: 10, inferences: 10, closedBy: 'count' },
  features: [{ name: 'pixel_mean', verdict: 'ok', score: 0.1, reasons: [] }],
};

for (const b of backends) {
  t.test(b.name, async (t) => {
    const open = async (t: Test): Promise<ControllerStore> => {
      const { store } = await b.make(t);
      t.teardown(() => store.close());
      return store;
    };

    t.test('status upserts, last seen and groups', async (t) => {
      const s = await open(t);
      await s.upsertStatus('dev-1', status('online', { groups: ['lab', 'eu'], uptimeSeconds: 10 }));
      await s.upsertStatus('dev-2', status('offline'));
      await s.upsertStatus('dev-1', status('online', { groups: ['lab'], uptimeSeconds: 20 }));
      const later = Date.now() + 60_000;
      s.seen('dev-2', later);
      s.seen('dev-3');
      const devs = await s.devices();
      t.same(devs.map((d) => [d.deviceId, d.state]), [['dev-1', 'online'], ['dev-2', 'offline'], ['dev-3', 'unknown']], 'one row per device, newest status');
      t.equal((await s.device('dev-2'))!.lastSeen, new Date(later).toISOString(), 'last seen is the latest message');
      t.equal((await s.device('dev-1'))!.status?.uptimeSeconds, 20, 'the status document is kept');
      t.same(await s.groupMembers('lab'), ['dev-1'], 'groups from the newest status');
      t.same(await s.groupMembers('eu'), [], 'a group the device left');
      t.same(await s.groupMembers('*'), ['dev-1', 'dev-2', 'dev-3'], '* is every device');
      s.seen('dev-2', later - 120_000);
      t.equal((await s.device('dev-2'))!.lastSeen, new Date(later).toISOString(), 'an older message does not move last seen back');
      t.equal(await s.device('nope'), undefined, 'an unknown device');
    });

    t.test('telemetry de-duplicated by (device, stream, seq)', async (t) => {
      const s = await open(t);
      const recs = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ seq: from + i, ts: 1_700_000_000_000 + (from + i) * 1000, payload: { v: from + i } }));
      const r1 = await s.ingestBatch('dev-1', 'inference', recs(1, 5), 'r1');
      t.same([r1.records, r1.stored, r1.duplicates], [5, 5, 0], 'a new batch is stored');
      t.same(r1.storedSeqs, [1, 2, 3, 4, 5], 'stored seqs in order');
      const r2 = await s.ingestBatch('dev-1', 'inference', recs(4, 4), 'r1');
      t.same([r2.records, r2.stored, r2.duplicates, r2.storedSeqs], [4, 2, 2, [6, 7]], 'an overlapping batch stores only the new records');
      const r3 = await s.ingestBatch('dev-2', 'inference', recs(1, 2));
      t.equal(r3.stored, 2, 'the same seq from another device is another record');
      const r4 = await s.ingestBatch('dev-1', 'metrics', recs(1, 1));
      t.equal(r4.stored, 1, 'and on another stream');
      const rows = await s.telemetry('dev-1', { stream: 'inference' });
      t.same(rows.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7], 'each record once');
      t.same(rows[2]!.payload, { v: 3 }, 'payload round-trips');
      t.same((await s.telemetry('dev-1', { stream: 'inference', afterSeq: 5, limit: 1 })).map((r) => r.seq), [6], 'afterSeq and limit');
      const sum = await s.telemetrySummary('dev-1');
      t.same(sum, [
        { deviceId: 'dev-1', stream: 'inference', records: 7, duplicates: 2, batches: 2, lastSeq: 7 },
        { deviceId: 'dev-1', stream: 'metrics', records: 1, duplicates: 0, batches: 1, lastSeq: 1 },
      ], 'summary per stream');
      t.equal((await s.batches()).length, 4, 'every batch is recorded');
      t.equal((await s.batches())[0]!.replica, 'r1', 'with the replica that stored it');
    });

    t.test('concurrent duplicate batches store each record once', async (t) => {
      const s = await open(t);
      const recs = Array.from({ length: 200 }, (_, i) => ({ seq: i + 1, ts: 1_700_000_000_000 + i, payload: { i } }));
      const results = await Promise.all(Array.from({ length: 6 }, (_, k) => s.ingestBatch('dev-c', 'inference', recs, `r${k}`)));
      t.equal(results.reduce((n, r) => n + r.stored, 0), 200, 'stored once in total across the concurrent batches');
      t.equal(results.reduce((n, r) => n + r.duplicates, 0), 200 * 5, 'the rest are duplicates');
      t.equal((await s.telemetry('dev-c')).length, 200, '200 rows');
    });

    t.test('drift reports, rejections and commands', async (t) => {
      const s = await open(t);
      await s.ingestBatch('dev-1', 'drift', [{ seq: 1, ts: 1000, payload: driftDoc }, { seq: 2, ts: 2000, payload: driftDoc }]);
      await s.ingestBatch('dev-1', 'drift', [{ seq: 2, ts: 2000, payload: driftDoc }]);
      const drift = await s.driftReports();
      t.same(drift.map((d) => [d.deviceId, d.seq]), [['dev-1', 2], ['dev-1', 1]], 'newest first, a re-sent report once');
      await s.reject('dev-1', 'edge/v1/dev-1/telemetry/x', 'bad', 12);
      await s.reject(undefined, 'edge/v1/x', 'worse', 1);
      t.same(await s.rejected(), [{ deviceId: 'dev-1', topic: 'edge/v1/dev-1/telemetry/x', reason: 'bad', bytes: 12 }, { deviceId: null, topic: 'edge/v1/x', reason: 'worse', bytes: 1 }], 'rejections');
      await s.commandSent('c1', 'dev-1', 'ping', {});
      await s.commandReplied('c1', 'dev-1', { id: 'c1', ok: true, result: { pong: 1 } } as { ok: boolean });
      await s.commandReplied('c2', 'dev-1', { id: 'c2', ok: false } as { ok: boolean });
      const cmds = await s.commands('dev-1');
      t.same(cmds.map((c) => [c.id, c.name, c.ok]), [['c1', 'ping', true], ['c2', null, false]], 'sent and replied');
      t.same(cmds[0]!.reply, { id: 'c1', ok: true, result: { pong: 1 } }, 'the reply is kept');
      t.same(await s.commands('dev-9'), [], 'per device');
    });

    t.test('artifacts, chunks and desired documents', async (t) => {
      const s = await open(t);
      const chunks = [Buffer.from('aaaa'), Buffer.from([0, 1, 2, 255])];
      await s.putArtifact({ sha256: 'ab'.repeat(32), name: 'digits', version: '1.0.0', size: 8, chunkSize: 4, chunks: ['h0', 'h1'], signature: null }, (i) => chunks[i]!);
      const a = await s.artifact({ name: 'digits', version: '1.0.0' });
      t.match(a, { sha256: 'ab'.repeat(32), size: 8, chunkSize: 4, chunks: ['h0', 'h1'], signature: null }, 'by name and version');
      t.same(await s.artifact({ sha256: 'ab'.repeat(32) }), a, 'by sha256');
      t.same(await s.chunk('ab'.repeat(32), 1), chunks[1], 'binary chunks round-trip');
      t.equal(await s.chunk('ab'.repeat(32), 2), undefined, 'no such chunk');
      await s.putArtifact({ sha256: 'cd'.repeat(32), name: 'digits', version: '1.0.0', size: 4, chunkSize: 4, chunks: ['h'], signature: 'sig' }, () => chunks[0]!);
      t.same((await s.artifacts()).map((x) => x.sha256), ['cd'.repeat(32)], 'a re-publish replaces name@version');
      t.same(await s.chunk('cd'.repeat(32), 0), chunks[0], 'with its own chunks');
      t.equal(await s.desired('device/dev-1'), undefined, 'no desired doc yet');
      await s.setDesired('device/dev-1', { v: 1, models: [{ name: 'digits', version: '1.0.0' }] });
      await s.setDesired('device/dev-1', { v: 1, models: [{ name: 'digits', version: '1.1.0' }] });
      t.same(await s.desired('device/dev-1'), { v: 1, models: [{ name: 'digits', version: '1.1.0' }] }, 'the newest desired doc');
    });

    t.test('rollouts and their lease', async (t) => {
      const s = await open(t);
      const r = { id: 'ro-1', model: 'digits', version: '2.0.0', previousVersion: '1.0.0', group: 'lab', stages: [10, 50, 100], gates: { maxFailures: 0 } as never, stageIndex: 0, stageStartedAt: 5, state: 'running' as const, createdAt: 1 };
      await s.rollouts.create(r);
      t.same(await s.rollouts.get('ro-1'), r, 'a rollout round-trips');
      t.same((await s.rollouts.running()).map((x) => x.id), ['ro-1'], 'running');
      await s.rollouts.assign('ro-1', { deviceId: 'dev-1', stage: 0, assignedAt: 10, previousVersion: '1.0.0' });
      await s.rollouts.assign('ro-1', { deviceId: 'dev-1', stage: 1, assignedAt: 11 });
      await s.rollouts.recordOutcome('ro-1', 'dev-1', { state: 'active', at: 12 });
      t.same(await s.rollouts.assignments('ro-1'), [{ deviceId: 'dev-1', stage: 0, assignedAt: 10, previousVersion: '1.0.0', outcome: { state: 'active', reason: undefined, at: 12 } }], 'assigned once, with its outcome');
      await s.rollouts.setStage('ro-1', 1, 20);
      await s.rollouts.setState('ro-1', 'completed', 'done');
      t.match(await s.rollouts.get('ro-1'), { stageIndex: 1, stageStartedAt: 20, state: 'completed', reason: 'done' }, 'stage and state');
      t.same((await s.rollouts.running()), [], 'no longer running');
      t.same((await s.rollouts.events('ro-1')).map((e) => e.kind), ['created', 'stage', 'completed'], 'events in order');
      t.equal(await s.rollouts.lease('ro-1', 'replica-a', 60_000), true, 'a free rollout is leased');
      t.equal(await s.rollouts.lease('ro-1', 'replica-b', 60_000), false, 'not to another replica while the lease runs');
      t.equal(await s.rollouts.lease('ro-1', 'replica-a', 60_000), true, 'the holder renews');
      t.equal(await s.rollouts.lease('ro-2', 'replica-b', -1), true, 'another rollout is leased apart');
      t.equal(await s.rollouts.lease('ro-2', 'replica-a', 60_000), true, 'an expired lease is taken over');
      const race = await Promise.all(['x', 'y', 'z'].map((o) => s.rollouts.lease('ro-3', o, 60_000)));
      t.equal(race.filter(Boolean).length, 1, 'of replicas racing for one rollout, one wins');
    });

    t.test('device pages: filters, sort and counts in the database', async (t) => {
      const s = await open(t);
      for (let i = 0; i < 30; i++) {
        const id = `dev-${String(i).padStart(3, '0')}`;
        await s.upsertStatus(id, status(i % 3 === 0 ? 'offline' : 'online', { groups: i % 2 ? ['odd'] : ['even'] }));
        s.seen(id, 1_800_000_000_000 + (30 - i) * 1000);
        await s.upsertReported(id, reported([{ name: 'digits', version: i < 10 ? '1.0.0' : '2.0.0' }, ...(i % 5 === 0 ? [{ name: 'kws', version: '0.1.0' }] : [])]));
      }
      const base = { offset: 0, limit: 5, sort: 'deviceId' as const, order: 'asc' as const };
      const p1 = await s.devicePage(base);
      t.same([p1.total, p1.offset, p1.limit, p1.rows.map((r) => r.deviceId)], [30, 0, 5, ['dev-000', 'dev-001', 'dev-002', 'dev-003', 'dev-004']], 'the first page');
      t.same((await s.devicePage({ ...base, offset: 28 })).rows.map((r) => r.deviceId), ['dev-028', 'dev-029'], 'the last page is short');
      t.same((await s.devicePage({ ...base, order: 'desc' })).rows[0]!.deviceId, 'dev-029', 'descending');
      t.same((await s.devicePage({ ...base, sort: 'lastSeen', order: 'desc' })).rows[0]!.deviceId, 'dev-000', 'by last seen');
      const off = await s.devicePage({ ...base, state: 'offline', limit: 100 });
      t.equal(off.total, 10, 'filtered by state');
      t.ok(off.rows.every((r) => r.state === 'offline'), 'only that state');
      t.equal((await s.devicePage({ ...base, search: '02' })).total, 11, 'search is a substring of the id');
      t.equal((await s.devicePage({ ...base, search: 'DEV-01' })).total, 10, 'case-insensitive');
      t.equal((await s.devicePage({ ...base, search: '%' })).total, 0, 'a LIKE wildcard is matched literally');
      t.equal((await s.devicePage({ ...base, group: 'odd' })).total, 15, 'by group');
      t.equal((await s.devicePage({ ...base, model: 'kws' })).total, 6, 'by model');
      t.equal((await s.devicePage({ ...base, model: 'digits', version: '1.0.0' })).total, 10, 'by model and version');
      t.equal((await s.devicePage({ ...base, model: 'digits', version: '2.0.0', state: 'offline', group: 'even' })).total, 3, 'filters combine');
      t.same((await s.devicePage({ ...base, sort: 'state', limit: 1 })).rows[0]!.state, 'offline', 'by state');
      const counts = await s.deviceCounts();
      t.same(counts, { total: 30, byState: { offline: 10, online: 20 }, byVersion: { 'digits@1.0.0': 10, 'digits@2.0.0': 20, 'kws@0.1.0': 6 }, failedDeploys: 0 }, 'counts by state and version');
      await s.upsertReported('dev-000', reported([{ name: 'digits', version: '2.0.0' }]));
      t.same((await s.deviceCounts()).byVersion, { 'digits@1.0.0': 9, 'digits@2.0.0': 21, 'kws@0.1.0': 5 }, 'a new report replaces the models');
      // A version a device failed to install is not one it serves: not counted, not matched, but counted as a failed deploy.
      await s.upsertReported('dev-001', reported([{ name: 'digits', version: '1.0.0' }, { name: 'kws', version: '0.2.0', state: 'failed' }]));
      const after = await s.deviceCounts();
      t.same([after.byVersion['kws@0.2.0'], after.failedDeploys], [undefined, 1], 'a failed version is a failed deploy, not a served version');
      t.equal((await s.devicePage({ ...base, model: 'kws', version: '0.2.0' })).total, 0, 'the version filter takes served versions only');
    });

    t.test('examples and labels of several streams across devices, joined into a dataset', async (t) => {
      const s = await open(t);
      const t0 = Date.now() - 60_000;
      const input = (v: number) => ({ x: { dtype: 'float32', shape: [1, 2], base64: Buffer.from(new Float32Array([v, v]).buffer).toString('base64') } });
      const ex = (id: string, version = '1.0.0') => ({ id, model: 'digits', version, reason: 'random', inputs: input(1), outputs: input(0) });
      const fb = (id: string, label: unknown, version = '1.0.0') => ({ id, model: 'digits', version, label, correct: true, example: true });
      const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      await s.ingestBatch('dev-1', 'examples', [{ seq: 1, ts: t0, payload: ex(id(1)) }, { seq: 2, ts: t0 + 1000, payload: ex(id(2)) }, { seq: 3, ts: t0 + 2000, payload: ex(id(9), '2.0.0') }]);
      await s.ingestBatch('dev-1', 'feedback', [{ seq: 1, ts: t0 + 3000, payload: fb(id(1), 3) }]);
      await s.ingestBatch('dev-2', 'examples', [{ seq: 1, ts: t0 + 4000, payload: ex(id(3)) }]);
      await s.ingestBatch('dev-2', 'feedback', [{ seq: 1, ts: t0 + 5000, payload: fb(id(3), 7) }]);
      await s.ingestBatch('dev-2', 'inference', [{ seq: 1, ts: t0, payload: { id: id(4), model: 'digits', version: '1.0.0' } }]);
      const all = await s.streamRecords(['examples', 'feedback']);
      t.same(all.map((r) => [r.deviceId, r.stream, r.seq]), [['dev-1', 'examples', 1], ['dev-1', 'examples', 2], ['dev-1', 'examples', 3], ['dev-1', 'feedback', 1], ['dev-2', 'examples', 1], ['dev-2', 'feedback', 1]], 'both streams, no other, by device, stream and seq');
      t.same(all[3]!.payload, fb(id(1), 3), 'payload round-trips');
      t.equal(all[0]!.ts, t0, 'the device timestamp');
      t.same((await s.streamRecords(['examples'], { devices: ['dev-2'] })).map((r) => r.deviceId), ['dev-2'], 'only the devices asked for');
      t.same((await s.streamRecords(['examples', 'feedback'], { since: t0 + 3000 })).map((r) => r.ts), [t0 + 3000, t0 + 4000, t0 + 5000], 'since, inclusive');
      t.same(await s.streamRecords([]), [], 'no streams, no records');
      const ds = await buildDataset(s, { model: 'digits', version: '1.0.0' });
      t.same(ds.map((e) => [e.id, e.deviceId, e.labels]), [[id(1), 'dev-1', [3]], [id(2), 'dev-1', undefined], [id(3), 'dev-2', [7]]], 'examples joined with their labels by answer id');
      t.same((await buildDataset(s, { model: 'digits', version: '1.0.0', labelled: true })).map((e) => e.id), [id(1), id(3)], '--labelled');
      t.same((await buildDataset(s, { model: 'digits', version: '1.0.0', devices: ['dev-2'] })).map((e) => e.id), [id(3)], '--devices');
      await t.rejects(buildDataset(s, { model: 'nope', version: '1.0.0' }), { code: FleetErrors.DATASET.code, message: /no examples or labels of model nope arrived; models with examples or labels: digits/ }, 'an unknown model');
      await t.rejects(buildDataset(s, { model: 'digits', version: '3.0.0' }), { message: /versions seen: 1\.0\.0, 2\.0\.0/ }, 'an unknown version');
      await t.rejects(buildDataset(s, { model: 'digits', version: '1.0.0', since: t0 + 60_000 }), { message: /digits@1\.0\.0: no examples or labels since/ }, 'nothing left after --since');
      await t.rejects(buildDataset(s, { model: 'digits', version: '2.0.0', labelled: true }), { message: /digits@2\.0\.0: no labelled examples \(1 examples, 0 labels/ }, 'nothing labelled');
    });

    t.test('telemetry volume per stream and minute, counted by the database', async (t) => {
      const s = await open(t);
      t.same(await s.telemetryVolume(0), [], 'no batches, no rows');
      const before = Date.now();
      await s.ingestBatch('dev-1', 'inference', [1, 2, 3].map((seq) => ({ seq, ts: seq, payload: { seq } })));
      await s.ingestBatch('dev-1', 'inference', [3, 4].map((seq) => ({ seq, ts: seq, payload: { seq } })));
      await s.ingestBatch('dev-2', 'metrics', [{ seq: 1, ts: 1, payload: {} }]);
      const after = Date.now();
      const rows = await s.telemetryVolume(before - 60_000);
      const minutes = new Set(rows.map((r) => r.minute));
      t.ok([...minutes].every((m) => m >= Math.floor(before / 60_000) && m <= Math.floor(after / 60_000)), 'each row in the minute its batch was received');
      const per = (stream: string) => rows.filter((r) => r.stream === stream).reduce((n, r) => n + r.records, 0);
      t.same([per('inference'), per('metrics')], [4, 1], 'stored records, duplicates not counted');
      t.ok(rows.every((r) => Number.isInteger(r.minute) && Number.isInteger(r.records)), 'numbers, not strings');
      t.same(await s.telemetryVolume(after + 60_000), [], 'nothing received since a later time');
    });

    t.test('learning counts: examples, and labels by label, per model version', async (t) => {
      const s = await open(t);
      t.same(await s.learningCounts(), [], 'nothing arrived, no rows');
      const ex = (seq: number, model: unknown, version: unknown) => ({ seq, ts: seq, payload: { id: `e${seq}`, model, version, inputs: { x: { dtype: 'float32', shape: [1], base64: 'AAAAAA==' } } } });
      const fb = (seq: number, version: string, label: unknown) => ({ seq, ts: seq, payload: { id: `e${seq}`, model: 'digits', version, label, correct: true } });
      await s.ingestBatch('dev-1', 'examples', [ex(1, 'digits', '1.0.0'), ex(2, 'digits', '1.0.0'), ex(3, 'digits', '2.0.0'), ex(4, 7, '1.0.0'), ex(5, 'digits', null)]);
      await s.ingestBatch('dev-2', 'examples', [ex(1, 'digits', '1.0.0')]);
      await s.ingestBatch('dev-1', 'feedback', [fb(1, '1.0.0', 3), fb(2, '1.0.0', 3), fb(3, '1.0.0', 'seven'), fb(4, '1.0.0', [1, 3]), fb(5, '1.0.0', '[1]'), fb(6, '2.0.0', null)]);
      await s.ingestBatch('dev-1', 'inference', [{ seq: 1, ts: 1, payload: { model: 'digits', version: '1.0.0', label: 3 } }]);
      const key = (r: { stream: string; model: string; version: string; label: unknown }) => `${r.stream} ${r.model}@${r.version} ${JSON.stringify(r.label)}`;
      const rows = (await s.learningCounts()).map((r) => [key(r), r.records] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      t.same(rows, [
        ['examples digits@1.0.0 null', 3],
        ['examples digits@2.0.0 null', 1],
        ['feedback digits@1.0.0 "[1]"', 1],
        ['feedback digits@1.0.0 "seven"', 1],
        ['feedback digits@1.0.0 3', 2],
        ['feedback digits@1.0.0 [1,3]', 1],
        ['feedback digits@2.0.0 null', 1],
      ], 'one row per stream, version and label; a label keeps its JSON type (a name that looks like an array stays a name); a model or version that is not a string is not counted; other streams are not counted');
      t.notMatch(JSON.stringify(await s.learningCounts()), /AAAA/, 'no input leaves the database');
    });

    t.test('the database reopens with its data (migrations are idempotent)', async (t) => {
      const { store, reopen } = await b.make(t);
      const ts = Date.now();
      await store.upsertStatus('dev-1', status('online'));
      await store.ingestBatch('dev-1', 'inference', [{ seq: 1, ts, payload: 1 }]);
      await store.close();
      const again = await reopen();
      t.teardown(() => again.close());
      t.same((await again.devices()).map((d) => [d.deviceId, d.state]), [['dev-1', 'online']], 'devices kept');
      t.equal((await again.ingestBatch('dev-1', 'inference', [{ seq: 1, ts, payload: 1 }])).duplicates, 1, 'de-dup across the restart');
    });
  });
}

t.test('postgres: migrations, partitions, retention and bad URLs', async (t) => {
  server ??= await startPostgres();
  const url = await server.createDatabase('partitions');
  const s = await PostgresControllerStore.open(url);
  t.teardown(() => s.close());
  const again = await PostgresControllerStore.open(url);
  await again.close();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end());
  const versions = (await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version as number);
  t.same(versions, [1, 2, 3, 4], 'each migration recorded once after two opens');

  const day = 86_400_000;
  const now = Date.now();
  const today = Math.floor(now / day) * day;
  t.ok((await partitions(s.pool)).includes(partitionName(today + day)), 'tomorrow\'s partition is made ahead');
  await ensurePartitions(s.pool, now - 10 * day, 0, 0);
  const old = partitionName(Math.floor((now - 10 * day) / day) * day);
  await s.ingestBatch('dev-1', 'inference', [{ seq: 1, ts: now - 10 * day + 1, payload: 'old' }, { seq: 2, ts: now, payload: 'new' }]);
  const where = (await c.query('SELECT tableoid::regclass::text AS part, seq FROM telemetry ORDER BY seq')).rows;
  t.same(where.map((r) => r.part), [old, partitionName(today)], 'each record in its day\'s partition');
  const dropped = await s.dropTelemetryBefore(now - 7 * day);
  t.same(dropped, [old], 'retention drops the old day whole');
  t.same((await s.telemetry('dev-1')).map((r) => r.payload), ['new'], 'the old records are gone, the new kept');

  await t.rejects(PostgresControllerStore.open('postgres://'), { code: FleetErrors.BAD_DATABASE.code }, 'a URL without a host');
  await t.rejects(PostgresControllerStore.open(`postgres://postgres@127.0.0.1:1/x`), { code: FleetErrors.DATABASE_UNREACHABLE.code, message: /cannot reach the controller database at postgres:\/\/postgres@127\.0\.0\.1:1\/x/ }, 'an unreachable server');
  await t.rejects(PostgresControllerStore.open('postgres://u:secret@127.0.0.1:1/x'), { message: /\*\*\*/ }, 'the password is not in the message');
});

t.test('postgres: replicas opening one new database at once migrate and partition it once', async (t) => {
  server ??= await startPostgres();
  const url = await server.createDatabase('race');
  const stores = await Promise.all([1, 2, 3].map(() => PostgresControllerStore.open(url)));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const versions = (await stores[0]!.pool.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version as number);
  t.same(versions, [1, 2, 3, 4], 'each migration applied once');
  t.equal((await partitions(stores[0]!.pool)).length, 5, 'yesterday to three days ahead, once');
});

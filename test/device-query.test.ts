// The fleet's devices a page at a time: the query parsed from HTTP parameters and CLI options
// (a clear 400 / message on bad ones), FleetStore.devicePage and deviceCounts against what the
// generator wrote, the migration of a database written before device_models existed, the
// dashboard's routes, and `edge-fleet devices` with its paging options and counts.
import t from 'tap';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FleetStore } from '../controller/store.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { DeviceQueryError, parseDeviceQuery, type DeviceQuery } from '../controller/device-query.js';
import { deviceName, fillFleet } from './helpers/fleet-10k.js';
import { repoRoot } from './helpers/pki.js';

t.setTimeout(120_000);
const tmp = (): string => mkdtempSync(path.join(tmpdir(), 'edge-devq-'));
const q = (over: Partial<DeviceQuery> = {}): DeviceQuery => ({ offset: 0, limit: 50, sort: 'deviceId', order: 'asc', ...over });

t.test('parseDeviceQuery: defaults, every parameter, and the reason for each bad one', async (t) => {
  t.same(parseDeviceQuery({}), q(), 'defaults: the first 50 by device id');
  t.same(parseDeviceQuery({ offset: '100', limit: '500', search: ' pi-1 ', state: 'offline', version: 'digits@1.1.0', group: 'lab', sort: 'lastSeen', order: 'desc' }),
    q({ offset: 100, limit: 500, search: 'pi-1', state: 'offline', model: 'digits', version: '1.1.0', group: 'lab', sort: 'lastSeen', order: 'desc' }));
  t.same(parseDeviceQuery({ model: 'digits', version: '1.0.0', state: '' }), q({ model: 'digits', version: '1.0.0' }), 'empty means not given');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ limit: '0' }, /limit must be a whole number from 1 to 500, got "0"/],
    [{ limit: '501' }, /limit must be a whole number from 1 to 500/],
    [{ limit: '2.5' }, /limit must be a whole number/],
    [{ limit: 'ten' }, /limit must be a whole number/],
    [{ offset: '-1' }, /offset must be a whole number from 0/],
    [{ offset: '99999999999' }, /offset must be a whole number/],
    [{ sort: 'name' }, /sort must be one of deviceId, lastSeen, state, got "name"/],
    [{ order: 'up' }, /order must be asc or desc/],
    [{ limit: ['1', '2'] }, /limit is given more than once/],
    [{ page: '2' }, /unknown parameter "page"; known: offset, limit/],
    [{ version: '1.0.0' }, /version needs a model/],
    [{ model: 'kws', version: 'digits@1.0.0' }, /names model "digits" but model is "kws"/],
    [{ model: 'a b' }, /model "a b" is not a valid model/],
    [{ group: '../x' }, /group "..\/x" is not a valid group/],
    [{ state: 'on line' }, /state "on line" is not a valid state/],
    [{ search: 'x'.repeat(65) }, /search is at most 64 characters/],
    [{ search: 'a\u0000b' }, /search must not contain control characters/],
  ];
  for (const [params, msg] of bad) {
    t.throws(() => parseDeviceQuery(params), msg, JSON.stringify(params).slice(0, 60));
    let err: unknown;
    try { parseDeviceQuery(params); } catch (e) { err = e; }
    t.ok(err instanceof DeviceQueryError && err.statusCode === 400, 'a DeviceQueryError (HTTP 400)');
  }
});

t.test('devicePage and deviceCounts over 2,000 devices, in SQL', async (t) => {
  const store = new FleetStore(path.join(tmp(), 'fleet.db'));
  t.teardown(() => store.close());
  const facts = fillFleet(store, 2000);
  const counts = store.deviceCounts();
  t.same(counts, { total: 2000, byState: facts.byState, byVersion: facts.byVersion, failedDeploys: facts.failedDeploys }, 'counts by state and served version (a failed 1.2.0 is not served)');
  t.notOk('digits@1.2.0' in counts.byVersion);

  const first = store.devicePage(q());
  t.equal(first.total, 2000);
  t.same(first.rows.map((r) => r.deviceId), facts.ids.slice(0, 50));
  t.equal(first.rows[1]!.state, 'offline');
  t.match(first.rows[1]!.reported, { models: [{ name: 'digits', version: '1.0.0', state: 'active' }] }, 'rows carry their documents');
  t.same(store.devicePage(q({ offset: 1990 })).rows.map((r) => r.deviceId), facts.ids.slice(1990), 'the last page is short');
  t.same(store.devicePage(q({ offset: 5000 })), { total: 2000, offset: 5000, limit: 50, rows: [] }, 'past the end: no rows, the total');
  t.same(store.devicePage(q({ order: 'desc', limit: 3 })).rows.map((r) => r.deviceId), facts.ids.slice(-3).reverse());

  const bySeen = [...facts.lastSeen.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
  t.same(store.devicePage(q({ sort: 'lastSeen', limit: 100, offset: 100 })).rows.map((r) => r.deviceId), bySeen.slice(100, 200), 'sorted by last seen, paged');
  t.same(store.devicePage(q({ sort: 'lastSeen', order: 'desc', limit: 5 })).rows.map((r) => r.deviceId), bySeen.slice(-5).reverse());
  const byState = store.devicePage(q({ sort: 'state', limit: 500 }));
  t.same([...new Set(byState.rows.map((r) => r.state))], ['offline'], 'sorted by state: offline before online and unknown');
  t.same(byState.rows.slice(0, 3).map((r) => r.deviceId), [deviceName(1), deviceName(5), deviceName(9)], 'then by device id');

  const offline = store.devicePage(q({ state: 'offline', limit: 500 }));
  t.equal(offline.total, facts.byState.offline);
  t.ok(offline.rows.every((r) => r.state === 'offline'));
  const v11 = store.devicePage(q({ model: 'digits', version: '1.1.0', limit: 500 }));
  t.equal(v11.total, facts.byVersion['digits@1.1.0'], 'the version filter matches the count (probation and active, and those that kept 1.1.0 after a failed 1.2.0)');
  t.equal(store.devicePage(q({ model: 'digits', version: '1.2.0' })).total, 0, 'a failed version serves nowhere');
  t.equal(store.devicePage(q({ model: 'kws' })).total, facts.byVersion['kws@2.0.0']);
  const lab = facts.ids.filter((id) => facts.groups.get(id)!.includes('lab'));
  t.equal(store.devicePage(q({ group: 'lab' })).total, lab.length, 'the group filter');
  t.same(store.groupMembers('lab'), lab, 'group members by index');
  t.same(store.groupMembers('site-3'), facts.ids.filter((id) => facts.groups.get(id)!.includes('site-3')));
  t.equal(store.groupMembers('all').length, 2000);
  const both = store.devicePage(q({ state: 'online', model: 'digits', version: '1.0.0', group: 'field', search: '1' }));
  t.equal(both.total, facts.ids.filter((id, i) => i % 20 !== 0 && i % 4 !== 1 && i % 10 < 6 && i % 3 !== 0 && id.includes('1')).length, 'every filter at once');

  t.same(store.devicePage(q({ search: 'pi-0199' })).rows.map((r) => r.deviceId), Array.from({ length: 10 }, (_, k) => deviceName(1990 + k)), 'search: a substring of the id');
  t.equal(store.devicePage(q({ search: '%' })).total, 0, '% is taken literally');
  t.equal(store.devicePage(q({ search: '_' })).total, 0, '_ is taken literally');

  // The query plans use the indexes: no full scan for a page sorted by last seen or a version count.
  const plan = (sql: string, ...args: unknown[]): string => (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join('; ');
  t.match(plan('SELECT device_id FROM devices d ORDER BY d.last_seen DESC, d.device_id DESC LIMIT 50'), /USING (COVERING )?INDEX devices_last_seen/);
  t.match(plan("SELECT COUNT(*) FROM device_models WHERE model = ? AND version = ? AND state IN ('active')", 'digits', '1.0.0'), /USING (COVERING )?INDEX device_models_version/);

  // The rollout driver's reports: the first entry per device for the model, with reason and shadow.
  const reports = new Map(store.modelReports('digits').map((r) => [r.deviceId, r]));
  t.equal(reports.size, facts.ids.filter((_, i) => i % 20 !== 0).length, 'every device that reported digits');
  t.same(reports.get(deviceName(9)), { deviceId: deviceName(9), version: '1.1.0', state: 'active' }, 'the first entry (1.1.0 kept, 1.2.0 failed after it)');
  store.upsertReported(deviceName(3), { models: [{ name: 'digits', version: '1.3.0', state: 'shadow', shadow: { agreement: 0.97, samples: 500 } }, { name: 'kws', version: '2.0.0', state: 'failed', reason: 'bad <b>' }] });
  t.same(store.modelReports('digits').find((r) => r.deviceId === deviceName(3)), { deviceId: deviceName(3), version: '1.3.0', state: 'shadow', shadow: { agreement: 0.97, samples: 500 } });
  t.same(store.modelReports('kws').find((r) => r.deviceId === deviceName(3)), { deviceId: deviceName(3), version: '2.0.0', state: 'failed', reason: 'bad <b>' });

  // The reported state replaced: its rows follow.
  store.upsertReported(deviceName(2), { models: [{ name: 'digits', version: '1.2.0', state: 'active' }] });
  t.equal(store.deviceCounts().byVersion['digits@1.2.0'], 1);
  t.same(store.devicePage(q({ model: 'digits', version: '1.2.0' })).rows.map((r) => r.deviceId), [deviceName(2)]);
  store.upsertStatus(deviceName(0), { state: 'online', groups: ['night'] });
  t.same(store.groupMembers('night'), [deviceName(0)]);
  t.notOk(store.groupMembers('lab').includes(deviceName(0)), 'groups follow the status');
});

t.test('a database written before device_models and device_groups is filled when opened', async (t) => {
  const file = path.join(tmp(), 'old.db');
  const old = new Database(file);
  old.exec(`CREATE TABLE devices (device_id TEXT PRIMARY KEY, state TEXT NOT NULL, status_json TEXT, groups_json TEXT NOT NULL DEFAULT '[]',
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, reported_json TEXT, reported_at INTEGER, status_at INTEGER)`);
  const ins = old.prepare('INSERT INTO devices VALUES (?, ?, ?, ?, 1, 1, ?, 1, 1)');
  ins.run('pi-a', 'online', '{"state":"online"}', '["lab"]', JSON.stringify({ models: [{ name: 'digits', version: '1.0.0', state: 'active' }] }));
  ins.run('pi-b', 'offline', null, '["lab","field"]', JSON.stringify({ models: [{ name: 'digits', version: '1.1.0', state: 'committed' }] }));
  ins.run('pi-c', 'online', null, 'not json', '{"models": "damaged"}');
  old.close();
  const store = new FleetStore(file);
  t.teardown(() => store.close());
  t.same(store.deviceCounts(), { total: 3, byState: { offline: 1, online: 2 }, byVersion: { 'digits@1.0.0': 1, 'digits@1.1.0': 1 }, failedDeploys: 0 }, 'counted from the stored documents; a damaged one counts for nothing');
  t.same(store.groupMembers('lab'), ['pi-a', 'pi-b']);
  t.same(store.devicePage(q({ model: 'digits', version: '1.1.0' })).rows.map((r) => r.deviceId), ['pi-b']);
});

t.test('the dashboard routes: a page, the counts, and 400 with the reason on bad parameters', async (t) => {
  const store = new FleetStore(path.join(tmp(), 'fleet.db'));
  t.teardown(() => store.close());
  const facts = fillFleet(store, 300);
  const app = buildDashboard({ store });
  t.teardown(() => app.close());
  const page = await app.inject('/api/device-page?state=offline&limit=10&offset=10&sort=deviceId&order=desc');
  t.equal(page.statusCode, 200);
  const body = page.json() as { total: number; offset: number; limit: number; rows: { deviceId: string; state: string; models: unknown[] }[] };
  const offline = facts.ids.filter((_, i) => i % 4 === 1 && i % 20 !== 0).reverse();
  t.same({ total: body.total, offset: body.offset, limit: body.limit }, { total: offline.length, offset: 10, limit: 10 });
  t.same(body.rows.map((r) => r.deviceId), offline.slice(10, 20));
  t.same((await app.inject('/api/device-counts')).json(), { total: 300, byState: facts.byState, byVersion: facts.byVersion, failedDeploys: facts.failedDeploys });
  const legacy = await app.inject('/api/devices');
  t.equal((legacy.json() as unknown[]).length, 50, '/api/devices: the rows of the first page');
  t.equal(legacy.headers['x-total-count'], '300');
  for (const [qs, msg] of [
    ['limit=0', /limit must be a whole number from 1 to 500/],
    ['limit=100000', /limit must be a whole number from 1 to 500/],
    ['sort=uptime', /sort must be one of deviceId, lastSeen, state/],
    ['order=sideways', /order must be asc or desc/],
    ['offset=-5', /offset must be a whole number/],
    ['limit=1&limit=2', /limit is given more than once/],
    ['colour=red', /unknown parameter "colour"/],
    ['version=1.0.0', /version needs a model/],
  ] as const) {
    for (const route of ['/api/device-page', '/api/devices']) {
      const res = await app.inject(`${route}?${qs}`);
      t.equal(res.statusCode, 400, `${route}?${qs}: 400`);
      t.match(res.json(), { error: { code: 'EDGE_BAD_REQUEST', message: msg } }, `${route}?${qs}: the reason`);
    }
  }
});

t.test('edge-fleet devices: --limit --offset --state --search --sort, counts, and bad options', async (t) => {
  const db = path.join(tmp(), 'fleet.db');
  const store = new FleetStore(db);
  const facts = fillFleet(store, 120);
  store.close();
  const fleet = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin/edge-fleet.js'), 'devices', '--db', db, ...args], { encoding: 'utf8', timeout: 30_000 });
  const plain = fleet();
  t.equal(plain.status, 0, plain.stderr);
  t.match(plain.stdout, new RegExp(`^120 devices: ${facts.byState.offline} offline, ${facts.byState.online} online, ${facts.byState.unknown} unknown; ${facts.failedDeploys} with a failed deploy\\n`), 'counts by state first');
  t.match(plain.stdout, new RegExp(`serving: digits@1\\.0\\.0: ${facts.byVersion['digits@1.0.0']}, digits@1\\.1\\.0: ${facts.byVersion['digits@1.1.0']}, kws@2\\.0\\.0: ${facts.byVersion['kws@2.0.0']}`), 'and by version');
  t.match(plain.stdout, /devices 1-50 of 120; next page: --offset 50\n$/, 'where the page is, and how to get the next');
  t.equal(plain.stdout.split('\n').filter((l) => /^pi-\d{5} /.test(l)).length, 50, '50 rows by default');

  const json = fleet('--json', '--state', 'offline', '--limit', '5', '--offset', '5', '--sort', 'deviceId', '--order', 'desc');
  t.equal(json.status, 0, json.stderr);
  const offline = facts.ids.filter((_, i) => i % 4 === 1 && i % 20 !== 0).reverse();
  t.same((JSON.parse(json.stdout) as { deviceId: string }[]).map((d) => d.deviceId), offline.slice(5, 10), '--json: the page\'s devices');
  const search = fleet('--search', 'pi-0011', '--sort', 'lastSeen');
  t.match(search.stdout, /devices 1-10 of 10 matching\n$/);
  t.same(JSON.parse(fleet('--counts', '--json').stdout), { total: 120, byState: facts.byState, byVersion: facts.byVersion, failedDeploys: facts.failedDeploys }, '--counts --json');
  for (const [args, msg] of [
    [['--limit', '0'], /--limit must be a whole number from 1 to 500, got "0"/],
    [['--sort', 'name'], /--sort must be one of deviceId, lastSeen, state/],
    [['--offset', 'x'], /--offset must be a whole number/],
    [['--version', '1.0.0'], /--version needs a model/],
  ] as const) {
    const r = fleet(...args);
    t.equal(r.status, 1, `${args.join(' ')}: fails`);
    t.match(r.stderr, msg, `${args.join(' ')}: the reason`);
    t.equal(r.stdout, '', 'and prints no table');
  }
});

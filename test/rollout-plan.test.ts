// Staged rollouts on the controller: stage selection, gates, halt with fleet-wide rollback,
// and a plan that survives a controller restart (real SQLite file). The fleet here is a table
// of device reports; test/rollout-*.test.ts runs real agents over Mosquitto.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { devicePercentile, devicesInStage, parseStages } from '../controller/rollout/stages.js';
import { DEFAULT_GATES, parseGates, type DeviceReport } from '../controller/rollout/plan.js';
import { RolloutStore } from '../controller/rollout/store.js';
import { RolloutDriver, type FleetPort } from '../controller/rollout/driver.js';

class TableFleet implements FleetPort {
  devices: string[];
  running = new Map<string, string>();
  desired = new Map<string, string>();
  reportsBy = new Map<string, DeviceReport>();
  constructor(n: number, version = '1.0.0') {
    this.devices = Array.from({ length: n }, (_, i) => `pi-${String(i).padStart(4, '0')}`);
    for (const d of this.devices) this.running.set(d, version);
  }
  groupMembers(): string[] { return this.devices; }
  reports(): Map<string, DeviceReport> { return this.reportsBy; }
  currentVersion(id: string): string | undefined { return this.running.get(id); }
  async setDesired(id: string, _model: string, version: string): Promise<void> { this.desired.set(id, version); }
  /** Every device told to run `version` reports `state` for it. */
  settle(version: string, state: (id: string) => string): void {
    for (const [id, v] of this.desired) if (v === version) this.reportsBy.set(id, { version, state: state(id) });
  }
}

const openStore = (file: string): { db: Database.Database; store: RolloutStore } => {
  const db = new Database(file);
  return { db, store: new RolloutStore(db) };
};

t.test('stages are nested and proportional, chosen by a stable hash', async (t) => {
  const ids = Array.from({ length: 2000 }, (_, i) => `dev-${i}`);
  const s1 = devicesInStage('r1', ids, 1), s10 = devicesInStage('r1', ids, 10), s50 = devicesInStage('r1', ids, 50);
  t.ok(s1.every((d) => s10.includes(d)) && s10.every((d) => s50.includes(d)), 'a device in an earlier stage stays in the later ones');
  t.ok(Math.abs(s10.length - 200) < 60, `10% of 2000 is about 200 (got ${s10.length})`);
  t.equal(devicesInStage('r1', ids, 100).length, 2000);
  t.same(devicesInStage('r1', ids, 10), s10, 'the same rollout picks the same devices again');
  t.notSame(devicesInStage('r2', ids, 10), s10, 'another rollout picks other canaries');
  t.equal(devicesInStage('r1', ['only-one'], 1).length, 1, 'a stage always has at least one device');
  // A small group: its hashes may all fall under the percent, the stage still takes its share.
  const four = ['pi-0', 'pi-1', 'pi-2', 'pi-3'];
  const allUnder = Array.from({ length: 5000 }, (_, i) => `r${i}`).find((r) => four.every((d) => devicePercentile(r, d) < 25));
  t.ok(allUnder, 'some rollout id puts all four devices under 25%');
  t.same(devicesInStage(allUnder!, four, 25).length, 1, `25% of four devices is one, even when all four hash under 25 (rollout ${allUnder})`);
  t.same(devicesInStage(allUnder!, four, 50).length, 2, 'and 50% is two, the first one among them');
  t.ok(devicesInStage(allUnder!, four, 25).every((d) => devicesInStage(allUnder!, four, 50).includes(d)), 'stages stay nested under the cap');
});

t.test('bad --stages and --gate values are clear errors', async (t) => {
  t.same(parseStages('1,10,50,100'), [1, 10, 50, 100]);
  t.throws(() => parseStages('10,5,100'), /must increase/);
  t.throws(() => parseStages('1,10'), /must end at 100/);
  t.throws(() => parseStages('a,100'), /comma-separated list of percents/);
  t.match(parseGates(['failure<=0.05', 'shadow>=0.98', 'samples>=500']), { maxFailureRate: 0.05, minShadowAgreement: 0.98, minShadowSamples: 500 });
  t.throws(() => parseGates(['latency<5']), /not understood/);
  t.throws(() => parseGates(['failure<=2']), /fraction between 0 and 1/);
});

t.test('a good version passes every stage to 100%', async (t) => {
  const fleet = new TableFleet(40);
  const { db, store } = openStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db'));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'digits', version: '2.0.0', group: 'all', stages: [5, 25, 100], gates: DEFAULT_GATES });
  const canaries = [...fleet.desired.keys()];
  t.ok(canaries.length >= 1 && canaries.length < 8, `the first stage goes to a few devices (${canaries.length})`);
  let stagesSeen = new Set<number>();
  for (let i = 0; i < 10 && store.get(r.id)!.state === 'running'; i++) {
    fleet.settle('2.0.0', () => 'committed');
    await driver.tick();
    stagesSeen.add(store.get(r.id)!.stageIndex);
  }
  t.equal(store.get(r.id)!.state, 'completed');
  t.same([...stagesSeen].sort(), [1, 2], 'went through the later stages');
  t.equal([...fleet.desired.values()].filter((v) => v === '2.0.0').length, 40, 'every device was told to run 2.0.0');
  const st = driver.status(r.id);
  t.same(st.stages.map((s) => s.devices.length).reduce((a, b) => a + b, 0), 40, 'status lists every device under its stage');
});

t.test('a failing canary halts the rollout at the first stage and rolls the fleet back', async (t) => {
  const fleet = new TableFleet(50);
  const { db, store } = openStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db'));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'digits', version: '2.1.0-bad', group: 'all', stages: [10, 50, 100], gates: DEFAULT_GATES });
  const canaries = [...fleet.desired.keys()];
  fleet.reportsBy.set(canaries[0], { version: '2.1.0-bad', state: 'rolled_back', reason: 'probation failed: non-finite outputs' });
  await driver.tick();
  const after = store.get(r.id)!;
  t.equal(after.state, 'halted');
  t.equal(after.stageIndex, 0, 'halted at the first stage');
  t.match(after.reason, /1 of \d+ devices failed digits@2.1.0-bad at stage 1/);
  t.equal(fleet.desired.size, canaries.length, 'no device beyond the canaries was touched');
  t.ok(canaries.every((d) => fleet.desired.get(d) === '1.0.0'), 'every canary is told to go back to 1.0.0');
  const halt = driver.status(r.id).events.find((e) => e.kind === 'halted');
  t.match(halt?.detail, { evidence: { [canaries[0]]: { reason: /non-finite/ } } }, 'the evidence is recorded');
});

t.test('shadow agreement gates promotion', async (t) => {
  const fleet = new TableFleet(10);
  const { db, store } = openStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db'));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'm', version: '3', group: 'all', stages: [10, 100], gates: parseGates(['shadow>=0.98', 'samples>=500']) });
  const [canary] = fleet.desired.keys();
  fleet.reportsBy.set(canary, { version: '3', state: 'committed', shadow: { agreement: 0.99, samples: 100 } });
  await driver.tick();
  t.equal(store.get(r.id)!.stageIndex, 0, 'too few shadow samples: the stage waits');
  fleet.reportsBy.set(canary, { version: '3', state: 'committed', shadow: { agreement: 0.9, samples: 600 } });
  await driver.tick();
  t.equal(store.get(r.id)!.state, 'halted', 'agreement 0.90 < 0.98 halts');
});

t.test('the plan survives a controller restart', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db');
  const fleet = new TableFleet(30);
  let { db, store } = openStore(file);
  const r = await new RolloutDriver(store, fleet).start({ model: 'digits', version: '2.0.0', group: 'all', stages: [10, 100], gates: DEFAULT_GATES });
  db.close();
  ({ db, store } = openStore(file));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  t.equal(store.get(r.id)!.state, 'running', 'the plan is still there after reopening the database');
  fleet.settle('2.0.0', () => 'committed');
  await driver.tick();
  fleet.settle('2.0.0', () => 'committed');
  await driver.tick();
  t.equal(store.get(r.id)!.state, 'completed', 'and it runs to completion');
});

t.test('a halt keeps the report it was decided on as the device\'s outcome, however reports interleave', async (t) => {
  // Reports arrive while a pass is under way: here the canary's report changes at every
  // reading, as when its probation report and its rollback land back to back. The halt must
  // be decided on the report that is recorded, or the halted rollout shows a stale state.
  const fleet = new TableFleet(10);
  const { db, store } = openStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db'));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'm', version: '2', group: 'all', stages: [10, 100], gates: DEFAULT_GATES });
  const [canary] = fleet.desired.keys();
  const sequence: DeviceReport[] = [
    { version: '2', state: 'probation' },
    { version: '2', state: 'rolled_back', reason: 'probation failed: 1 of 1 outputs had NaN or Infinity' },
  ];
  let readings = 0;
  fleet.reports = () => new Map([[canary, sequence[Math.min(readings++, sequence.length - 1)]]]);
  for (let i = 0; i < 3 && store.get(r.id)!.state === 'running'; i++) await driver.tick();
  t.equal(store.get(r.id)!.state, 'halted', 'the rollback halts the rollout');
  fleet.reports = () => new Map([[canary, { version: '1.0.0', state: 'active' }]]);
  const [device] = driver.status(r.id).stages[0]!.devices;
  t.same({ state: device.state, reason: device.reason }, { state: 'rolled_back', reason: sequence[1].reason },
    'once the canary reports its old version, the rollout still shows the rollback and its reason');
});

t.test('a halt marks the devices it rolls back, and keeps the reason of the one that failed', async (t) => {
  // 40 devices: the 30% stage then holds 2 or more of them but for about 1 rollout id in 87,000
  // (with 10, the hash put 0 or 1 of them under 30% for 15% of ids and the test failed so).
  const fleet = new TableFleet(40);
  const { db, store } = openStore(path.join(mkdtempSync(path.join(tmpdir(), 'edge-rollout-')), 'c.db'));
  t.teardown(() => db.close());
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'm', version: '2', group: 'all', stages: [30, 100], gates: { ...DEFAULT_GATES, maxFailureRate: 0 } });
  const canaries = [...fleet.desired.keys()];
  t.ok(canaries.length >= 2, `the first stage has ${canaries.length} canaries`);
  const [bad, ...rest] = canaries;
  fleet.reportsBy.set(bad, { version: '2', state: 'rolled_back', reason: 'probation failed: 1 of 1 outputs had NaN or Infinity' });
  for (const d of rest) fleet.reportsBy.set(d, { version: '2', state: 'probation' });
  await driver.tick();
  t.equal(store.get(r.id)!.state, 'halted');
  t.ok(canaries.every((d) => fleet.desired.get(d) === '1.0.0'), 'every canary is told to go back to 1.0.0');
  for (const d of canaries) fleet.reportsBy.set(d, { version: '1.0.0', state: 'active' });
  const devices = driver.status(r.id).stages[0]!.devices;
  const byId = new Map(devices.map((d) => [d.id, d]));
  t.same({ state: byId.get(bad)!.state, reason: byId.get(bad)!.reason }, { state: 'rolled_back', reason: 'probation failed: 1 of 1 outputs had NaN or Infinity' },
    'the canary that failed keeps its own reason');
  for (const d of rest) {
    t.equal(byId.get(d)!.state, 'rolled_back', `${d}, still on probation at the halt, shows the rollback`);
    t.match(byId.get(d)!.reason ?? '', /^rolled back to 1\.0\.0 by the controller: 1 of \d+ devices failed m@2/, 'with the halt\'s reason');
  }
});

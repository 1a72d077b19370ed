// The field-accuracy gate of a staged rollout (controller/rollout/plan.ts): decide() waits for
// enough labelled requests, halts a candidate whose accuracy on them is worse than the
// baseline's by more than the margin, and passes one that is good enough; parseGates reads
// --gate field>=D (D may be negative) and labels>=N. The fleet here is a table of device
// reports; test/rollout-field-fleet.test.ts runs the same gate against real agents. Also: the
// report's `field` checked on ingest, optional for older agents, and stored (an older database
// gains the column).
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decide, DEFAULT_FIELD_LABELS, DEFAULT_GATES, fieldEvidence, parseGates, type DeviceReport, type Gates, type Rollout } from '../controller/rollout/plan.js';
import { RolloutDriver, type FleetPort } from '../controller/rollout/driver.js';
import { RolloutStore } from '../controller/rollout/store.js';
import type { FieldReport } from '../protocol/field-accuracy.js';
import { checkDocument } from '../controller/documents.js';
import { FleetStore } from '../controller/store.js';
import { ControllerFleetPort } from '../controller/rollout/fleet-port.js';

t.setTimeout(30_000);

const NOW = 1_700_000_000_000;
const rollout = (gates: Partial<Gates>, extra: Partial<Rollout> = {}): Rollout => ({
  id: 'r-field', model: 'digits', version: '2.0.0', previousVersion: '1.0.0', group: 'lab', stages: [100],
  gates: { ...DEFAULT_GATES, ...gates }, stageIndex: 0, stageStartedAt: NOW, state: 'running', createdAt: NOW, ...extra,
});
const devices = ['pi-0', 'pi-1'];

/** Device reports: both devices committed 2.0.0, each with its shadow pair (1.0.0 served, 2.0.0 in shadow). */
function paired(perDevice: { labelled: number; base: number; cand: number }[], state = 'committed'): Map<string, DeviceReport> {
  return new Map(perDevice.map((p, i) => [devices[i]!, {
    version: '2.0.0', state,
    field: {
      versions: { '1.0.0': { labelled: p.labelled, correct: p.base }, '2.0.0': { labelled: p.labelled, correct: p.cand } },
      pairs: [{ primary: '1.0.0', shadow: '2.0.0', labelled: p.labelled, primaryCorrect: p.base, shadowCorrect: p.cand }],
    },
  }]));
}

const run = (r: Rollout, reports: Map<string, DeviceReport>, now = NOW + 1000) => decide(r, devices, new Set(devices), reports, now);

t.test('decide(): wait for labels, then halt a worse candidate or pass a good one', async (t) => {
  const cases: { name: string; gates: Partial<Gates>; reports: Map<string, DeviceReport>; now?: number; kind: string; match?: RegExp }[] = [
    { name: 'too few labels: the stage waits, even with every device committed', gates: { minFieldGain: 0, minFieldLabels: 100 },
      reports: paired([{ labelled: 30, base: 27, cand: 29 }, { labelled: 20, base: 18, cand: 19 }]), kind: 'wait', match: /50 of 100 labelled requests/ },
    { name: 'too few labels of a terrible candidate: no verdict on so little yet', gates: { minFieldGain: 0, minFieldLabels: 100 },
      reports: paired([{ labelled: 30, base: 27, cand: 3 }, { labelled: 20, base: 18, cand: 2 }], 'shadow'), kind: 'wait' },
    { name: 'enough labels, candidate worse: halt', gates: { minFieldGain: 0, minFieldLabels: 100 },
      reports: paired([{ labelled: 60, base: 57, cand: 6 }, { labelled: 60, base: 55, cand: 7 }], 'shadow'), kind: 'halt',
      match: /field accuracy of digits@2.0.0 is 0.108 against 0.933 for 1.0.0: gain -0.825 < 0 on 120 labelled requests \(paired\)/ },
    { name: 'enough labels, candidate better: the stage passes', gates: { minFieldGain: 0, minFieldLabels: 100 },
      reports: paired([{ labelled: 60, base: 40, cand: 57 }, { labelled: 60, base: 41, cand: 56 }]), kind: 'complete' },
    { name: 'as good as the baseline passes a margin of 0', gates: { minFieldGain: 0, minFieldLabels: 100 },
      reports: paired([{ labelled: 60, base: 50, cand: 50 }, { labelled: 60, base: 50, cand: 50 }]), kind: 'complete' },
    { name: 'a margin above 0 halts one only as good', gates: { minFieldGain: 0.02, minFieldLabels: 100 },
      reports: paired([{ labelled: 60, base: 50, cand: 50 }, { labelled: 60, base: 50, cand: 50 }]), kind: 'halt', match: /gain 0.000 < 0.02/ },
    { name: 'a negative margin allows a small loss', gates: { minFieldGain: -0.05, minFieldLabels: 100 },
      reports: paired([{ labelled: 100, base: 90, cand: 87 }, { labelled: 100, base: 90, cand: 88 }]), kind: 'complete' },
    { name: 'but not a larger one', gates: { minFieldGain: -0.05, minFieldLabels: 100 },
      reports: paired([{ labelled: 100, base: 90, cand: 80 }, { labelled: 100, base: 90, cand: 82 }]), kind: 'halt', match: /gain -0.090 < -0.05/ },
    { name: 'labels>=N alone: the stage waits for labels but judges no gain', gates: { minFieldLabels: 100 },
      reports: paired([{ labelled: 60, base: 57, cand: 6 }, { labelled: 60, base: 55, cand: 7 }]), kind: 'complete' },
    { name: 'field>=D alone: DEFAULT_FIELD_LABELS labels are needed', gates: { minFieldGain: 0 },
      reports: paired([{ labelled: 40, base: 30, cand: 35 }, { labelled: 40, base: 30, cand: 35 }]), kind: 'wait', match: new RegExp(`80 of ${DEFAULT_FIELD_LABELS} labelled`) },
    { name: 'older agents report no field accuracy: no labels, the stage waits', gates: { minFieldGain: 0, minFieldLabels: 10 },
      reports: new Map(devices.map((d) => [d, { version: '2.0.0', state: 'committed' }])), kind: 'wait', match: /0 of 10 labelled requests/ },
    { name: 'waiting for labels past the stage timeout halts', gates: { minFieldGain: 0, minFieldLabels: 100, stageTimeoutSeconds: 60 }, now: NOW + 61_000,
      reports: paired([{ labelled: 30, base: 27, cand: 29 }, { labelled: 20, base: 18, cand: 19 }]), kind: 'halt', match: /did not pass within 60 s: 50 of 100 labelled requests/ },
    { name: 'the gate off: labels are not looked at', gates: {},
      reports: paired([{ labelled: 60, base: 57, cand: 6 }, { labelled: 60, base: 55, cand: 7 }]), kind: 'complete' },
  ];
  for (const c of cases) {
    const d = run(rollout(c.gates), c.reports, c.now);
    t.equal(d.kind, c.kind, `${c.name}: ${JSON.stringify(d)}`);
    if (c.match) t.match(d.kind === 'halt' ? d.reason : d.kind === 'wait' ? d.why : '', c.match, `${c.name}: says why`);
  }
});

t.test('the halt carries both accuracies, the gain and the label count', async (t) => {
  const d = run(rollout({ minFieldGain: -0.01, minFieldLabels: 50 }), paired([{ labelled: 50, base: 45, cand: 5 }, { labelled: 10, base: 9, cand: 1 }], 'shadow'));
  if (d.kind !== 'halt') return t.fail(`expected a halt, got ${JSON.stringify(d)}`);
  t.same(d.evidence, {
    field: {
      candidate: { version: '2.0.0', labelled: 60, correct: 6, accuracy: 0.1 },
      baseline: { version: '1.0.0', labelled: 60, correct: 54, accuracy: 0.9 },
      gain: 0.1 - 0.9, labels: 60, paired: true, devices: 2, minFieldGain: -0.01, minFieldLabels: 50,
    },
  }, 'evidence: accuracies, gain, labels');
});

t.test('fieldEvidence(): pairs when the device shadowed the candidate, else each version on its own (A/B, probation)', async (t) => {
  const r = rollout({ minFieldGain: 0, minFieldLabels: 10 });
  const ab: FieldReport = { versions: { '1.0.0': { labelled: 40, correct: 36 }, '2.0.0': { labelled: 10, correct: 10 } }, pairs: [] };
  const shadowed: FieldReport = {
    // 2.0.0's own tally also holds answers it served after promotion; the pair is what counts.
    versions: { '1.0.0': { labelled: 20, correct: 10 }, '2.0.0': { labelled: 50, correct: 45 } },
    pairs: [
      { primary: '1.0.0', shadow: '2.0.0', labelled: 20, primaryCorrect: 10, shadowCorrect: 18 },
      // Another candidate shadowed earlier on the same device: not this rollout's.
      { primary: '1.0.0', shadow: '1.5.0', labelled: 30, primaryCorrect: 15, shadowCorrect: 0 },
    ],
  };
  // A device whose candidate was rolled back before any label: baseline labels only.
  const baselineOnly: FieldReport = { versions: { '1.0.0': { labelled: 35, correct: 20 } }, pairs: [] };
  const e = fieldEvidence(r, [
    { version: '2.0.0', state: 'probation', field: ab }, { version: '2.0.0', state: 'committed', field: shadowed }, undefined,
    { version: '2.0.0', state: 'committed' }, { version: '2.0.0', state: 'rolled_back', field: baselineOnly },
  ]);
  t.same(e.candidate, { version: '2.0.0', labelled: 30, correct: 28, accuracy: 28 / 30 }, 'candidate: the A/B device\'s own answers and the pair');
  t.same(e.baseline, { version: '1.0.0', labelled: 60, correct: 46, accuracy: 46 / 60 }, 'baseline: the A/B device\'s answers and the pair');
  t.equal(e.labels, 30, 'labels: what the candidate was scored on');
  t.equal(e.paired, false, 'not every device paired');
  t.equal(e.devices, 2, 'devices without field accuracy, or without labels of the candidate, do not count');

  const onlyCandidate = fieldEvidence(r, [{ version: '2.0.0', state: 'committed', field: { versions: { '2.0.0': { labelled: 30, correct: 30 } }, pairs: [] } }]);
  t.equal(onlyCandidate.gain, null, 'no baseline labels: no gain');
  const d = decide(r, ['pi-0'], new Set(['pi-0']), new Map([['pi-0', { version: '2.0.0', state: 'committed', field: { versions: { '2.0.0': { labelled: 30, correct: 30 } }, pairs: [] } }]]), NOW + 1000);
  t.match(d, { kind: 'wait', why: /no labelled requests of the baseline 1.0.0/ }, 'the gain gate waits for baseline labels rather than pass blind');

  const noPrevious = fieldEvidence(rollout({ minFieldGain: 0 }, { previousVersion: undefined }), [{ version: '2.0.0', state: 'shadow', field: ab }]);
  t.equal(noPrevious.baseline.version, '1.0.0', 'without a previousVersion the baseline is whatever else the devices served');
});

t.test('--gate field>=D and labels>=N', async (t) => {
  t.match(parseGates(['field>=-0.01', 'labels>=200']), { minFieldGain: -0.01, minFieldLabels: 200 }, 'a negative margin and a label count');
  t.match(parseGates(['field>=0.02']), { minFieldGain: 0.02, minFieldLabels: undefined });
  t.match(parseGates(['field = 0']), { minFieldGain: 0 });
  t.equal(parseGates([]).minFieldGain, undefined, 'off by default');
  t.throws(() => parseGates(['field>=2']), /field is an accuracy gain between -1 and 1/);
  t.throws(() => parseGates(['field>=-']), /not a number|not understood/);
  t.throws(() => parseGates(['field<=0.1']), /not understood.*field>=D/, 'field is a lower bound');
  t.throws(() => parseGates(['shadow>=-0.5']), /not understood/, 'only field may be negative');
  t.throws(() => parseGates(['labels>=0']), /labels must be a whole number of labelled requests, at least 1/);
  t.throws(() => parseGates(['labels>=2.5']), /whole number/);
});

class TableFleet implements FleetPort {
  desired = new Map<string, string>();
  reportsBy = new Map<string, DeviceReport>();
  constructor(readonly devices: string[]) {}
  groupMembers(): string[] { return this.devices; }
  reports(): Map<string, DeviceReport> { return this.reportsBy; }
  currentVersion(): string { return '1.0.0'; }
  async setDesired(id: string, _model: string, version: string): Promise<void> { this.desired.set(id, version); }
}

t.test('a halt on field accuracy rolls the stage back and the status shows the figures', async (t) => {
  const db = new Database(path.join(mkdtempSync(path.join(tmpdir(), 'edge-field-gate-')), 'c.db'));
  t.teardown(() => db.close());
  const store = new RolloutStore(db);
  const fleet = new TableFleet(Array.from({ length: 10 }, (_, i) => `pi-${i}`));
  const driver = new RolloutDriver(store, fleet);
  const r = await driver.start({ model: 'digits', version: '2.0.0', previousVersion: '1.0.0', group: 'lab', stages: [20, 100], gates: parseGates(['field>=0', 'labels>=40']) });
  const canaries = [...fleet.desired.keys()];
  t.ok(canaries.length >= 1 && canaries.length < 10, `a first stage of a few devices (${canaries.length})`);
  const report = (labelled: number, cand: number): void => {
    for (const id of canaries) {
      fleet.reportsBy.set(id, { version: '2.0.0', state: 'shadow', field: { versions: {}, pairs: [{ primary: '1.0.0', shadow: '2.0.0', labelled, primaryCorrect: labelled, shadowCorrect: cand }] } });
    }
  };
  report(5, 0);
  await driver.tick(NOW);
  t.equal(store.get(r.id)!.state, 'running', 'few labels: still running');
  t.match(driver.status(r.id).field, { labels: 5 * canaries.length, minFieldLabels: 40 }, 'status counts the labels so far');
  report(Math.ceil(40 / canaries.length), 1);
  await driver.tick();
  const halted = store.get(r.id)!;
  t.equal(halted.state, 'halted', `halted: ${halted.reason}`);
  t.match(halted.reason, /field accuracy of digits@2.0.0/);
  t.same(canaries.map((d) => fleet.desired.get(d)), canaries.map(() => '1.0.0'), 'every canary is told to go back to 1.0.0');
  t.equal([...fleet.desired.keys()].length, canaries.length, 'no device past the first stage was touched');
  const st = driver.status(r.id);
  t.equal(st.field!.baseline.accuracy, 1, 'status: baseline accuracy');
  t.ok(st.field!.gain! < 0, 'status: the gain');
});

t.test('field accuracy in models/reported: checked on ingest, optional, stored and read back for the gate', async (t) => {
  const field: FieldReport = { versions: { '1.0.0': { labelled: 4, correct: 3 } }, pairs: [{ primary: '1.0.0', shadow: '2.0.0', labelled: 4, primaryCorrect: 3, shadowCorrect: 1 }] };
  const doc = (f?: unknown) => ({ v: 1, models: [{ name: 'digits', version: '2.0.0', state: 'shadow', ...(f !== undefined ? { field: f } : {}) }] });
  t.ok('doc' in checkDocument('reported', doc()), 'an older agent\'s report without field is accepted');
  t.ok('doc' in checkDocument('reported', doc(field)), 'with field');
  const bad = checkDocument('reported', doc({ versions: { '1.0.0': { labelled: -1, correct: 0 } }, pairs: [] }));
  t.match('problem' in bad ? bad.problem : '', /models\/0\/field\/versions\/1\.0\.0\/labelled must be >= 0/, 'a negative count is refused, with its path');
  const noPairs = checkDocument('reported', doc({ versions: {} }));
  t.match('problem' in noPairs ? noPairs.problem : '', /field must have required property 'pairs'/);

  // A database written before field_json existed gains the column when opened.
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edge-field-store-')), 'old.db');
  const old = new Database(file);
  old.exec(`CREATE TABLE device_models (device_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, pos INTEGER NOT NULL DEFAULT 0,
    reason TEXT, shadow_json TEXT, PRIMARY KEY (device_id, model, version)) WITHOUT ROWID`);
  old.close();
  const store = new FleetStore(file);
  t.teardown(() => store.close());
  store.upsertReported('pi-0', doc(field));
  store.upsertReported('pi-1', doc());
  const reports = new ControllerFleetPort(store, () => undefined, () => 5).reports('digits') as Map<string, DeviceReport>;
  t.same(reports.get('pi-0')?.field, field, 'stored and read back');
  t.equal(reports.get('pi-1')?.field, undefined, 'none from an older agent');
  store.db.prepare('UPDATE device_models SET field_json = ? WHERE device_id = ?').run('{"versions":{"1.0.0":{"labelled":"many"}},"pairs":[]}', 'pi-1');
  t.equal((new ControllerFleetPort(store, () => undefined, () => 5).reports('digits') as Map<string, DeviceReport>).get('pi-1')?.field, undefined, 'a damaged row counts no labels');
});

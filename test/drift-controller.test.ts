// The controller side: drift reports from three devices stored by the real FleetStore (SQLite),
// ranked by device and feature, merged into a fleet profile and compared with the reference
// read from the published package; `edge-fleet drift` (a real child process) prints it.
import t from 'tap';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildReference, loadReference, type DriftReport } from '../agent/drift/index.js';
import { DriftWindow } from '../agent/drift/window.js';
import { b64ToF64 } from '../agent/drift/codec.js';
import { FleetStore } from '../controller/store.js';
import { publishPackage } from '../controller/publish.js';
import { aggregateDrift, fleetDrift, fleetProfile, rankDrift } from '../controller/drift/index.js';
import { rng, tabularBatch, TABULAR_SPEC, type Shift } from './drift-fixtures.js';

const run = promisify(execFile);
const reference = buildReference(Array.from({ length: 20 }, (_, i) => ({ inputs: tabularBatch(rng(900 + i), 250) })), TABULAR_SPEC);
const SETTINGS = { windowInferences: 1000, minWindowSize: 100, sketchK: 200, detectors: { adwinDelta: 0.002, pageHinkleyDelta: 0.005, pageHinkleyThreshold: 50, pageHinkleyMinSamples: 30 } };

function deviceReports(deviceId: string, seed: number, windows: number, rowsPerWindow: number, shift: Shift = {}): DriftReport[] {
  const ref = loadReference(reference);
  const w = new DriftWindow('tab', '1.0.0', ref.spec, ref, ref.spec.thresholds, SETTINGS, Date.UTC(2026, 0, 1));
  const r = rng(seed);
  const out: DriftReport[] = [];
  for (let i = 0; i < windows; i++) {
    w.add(tabularBatch(r, rowsPerWindow, shift), {}, 0);
    out.push(w.close('count', Date.UTC(2026, 0, 1, 0, i + 1), deviceId));
  }
  return out;
}

t.test('store, rank, merge and judge the fleet; edge-fleet drift prints it', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-fleet-drift-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'fleet.db');
  const store = new FleetStore(db);
  // Three devices; dev-c sees feature "a" shifted by one standard deviation in small windows.
  const fleet = {
    'dev-a': deviceReports('dev-a', 1, 2, 600),
    'dev-b': deviceReports('dev-b', 2, 2, 600),
    'dev-c': deviceReports('dev-c', 3, 2, 300, { meanA: 1 }),
  };
  for (const [device, reports] of Object.entries(fleet)) {
    store.ingestBatch(device, 'drift', reports.map((rep, i) => ({ seq: i + 1, ts: Date.parse(rep.window.end), payload: rep })));
  }
  const rows = store.driftReports(10_000);
  t.equal(rows.length, 6, 'six reports stored');

  const [ranking] = rankDrift(rows);
  t.match(ranking, { model: 'tab', version: '1.0.0' });
  t.equal(ranking.devices[0].deviceId, 'dev-c', 'the shifted device ranks first');
  t.equal(ranking.devices[0].worstFeature, 'a');
  t.equal(ranking.devices[0].windows, 2);
  t.equal(ranking.features[0].name, 'a', 'the shifted feature ranks first');
  t.equal(ranking.features[0].driftingDevices, 1);
  t.equal(ranking.features[0].worstDevice, 'dev-c');

  // The fleet profile merges the latest window of each device, exactly for histograms.
  const { profile, devices } = fleetProfile(rows, 'tab', '1.0.0');
  t.same(devices.sort(), ['dev-a', 'dev-b', 'dev-c']);
  t.equal(profile!.rows, 600 + 600 + 300);
  const hist = (rep: DriftReport) => Array.from(b64ToF64((rep.profile.features[0] as { hist: { counts: string } }).hist.counts, 'counts'));
  const summed = hist(fleet['dev-a'][1]).map((c, i) => c + hist(fleet['dev-b'][1])[i] + hist(fleet['dev-c'][1])[i]);
  t.same(Array.from((profile!.features[0] as { hist: { counts: Float64Array } }).hist.counts), summed, 'fleet histogram of a = sum of the devices\' latest');

  const verdict = fleetDrift(rows, 'tab', '1.0.0', reference)!;
  t.equal(verdict.rows, 1500);
  const a = verdict.features.find((f) => f.name === 'a')!;
  t.ok(a.mean! > 0.1 && a.mean! < 0.35, `fleet mean of a ${a.mean} (a fifth of the rows shifted by 1)`);
  t.ok(verdict.features.filter((f) => f.name !== 'a').every((f) => f.verdict !== 'drift'), 'unshifted features do not drift fleet-wide');

  // The reference comes from the published package.
  const pkg = path.join(dir, 'pkg');
  cpSync('models/digits-fp32', pkg, { recursive: true });
  const manifest = JSON.parse(readFileSync(path.join(pkg, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(path.join(pkg, 'manifest.json'), JSON.stringify({ ...manifest, name: 'tab', version: '1.0.0', drift: reference }));
  await publishPackage(store, pkg);
  const summary = await aggregateDrift(rows, store);
  t.equal(summary.length, 1);
  t.match(summary[0], { model: 'tab', version: '1.0.0', devices: 3, fleet: new RegExp(`^${verdict.verdict} \\(1500 rows`), worstDevices: /^dev-c /, worstFeatures: /^a / });
  store.close();

  const cli = await run(process.execPath, ['--import', 'tsx', 'controller/cli.ts', 'drift', '--db', db], { timeout: 60_000 });
  t.match(cli.stdout, /MODEL\s+VERSION\s+DEVICES\s+VERDICT\s+FLEET/, 'a table');
  t.match(cli.stdout, new RegExp(`tab\\s+1\\.0\\.0\\s+3\\s+(ok|warn|alert)\\s+${verdict.verdict} \\(1500 rows`), 'the devices\' verdict, then the fleet verdict');
  t.match(cli.stdout, /dev-c \w+ [0-9.]+/, 'the worst device');
  const json = await run(process.execPath, ['--import', 'tsx', 'controller/cli.ts', 'drift', '--db', db, '--json'], { timeout: 60_000 });
  t.match(JSON.parse(json.stdout), [{ model: 'tab', devices: 3 }]);
});

t.test('reports that are not drift reports are skipped; no reference says so', async (t) => {
  const rows = [{ deviceId: 'x', seq: 1, ts: 0, report: { hello: 1 } }, { deviceId: 'y', seq: 1, ts: 0, report: deviceReports('y', 5, 1, 200)[0] }];
  t.equal(rankDrift(rows).length, 1);
  const [row] = await aggregateDrift(rows);
  t.match(row, { devices: 1, fleet: /no reference/ });
  t.throws(() => fleetDrift(rows, 'tab', '1.0.0', { nope: 1 }), { code: 'EDGE_DRIFT_SPEC_INVALID' });
});

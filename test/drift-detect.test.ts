// Statistical behaviour with fixed seeds: windows from the reference distribution alert at most
// at the nominal rate; a mean shift, a scale shift and a new category are each found within a
// few windows, naming the shifted feature and not the others; ADWIN and Page-Hinkley detect a
// change and stay quiet without one.
import t from 'tap';
import { Adwin, buildReference, loadReference, PageHinkley, type DriftReport } from '../agent/drift/index.js';
import { DriftWindow } from '../agent/drift/window.js';
import { normal, rng, tabularBatch, TABULAR_SPEC, type Shift } from './drift-fixtures.js';

const SETTINGS = {
  windowInferences: 1000,
  minWindowSize: 100,
  sketchK: 200,
  detectors: { adwinDelta: 0.002, pageHinkleyDelta: 0.005, pageHinkleyThreshold: 50, pageHinkleyMinSamples: 30 },
};

const r0 = rng(2024);
const reference = buildReference(Array.from({ length: 40 }, () => ({ inputs: tabularBatch(r0, 500) })), TABULAR_SPEC);

function monitorWindows(seed: number, windows: number, shift: Shift = {}): DriftReport[] {
  const ref = loadReference(reference);
  const w = new DriftWindow('tab', '1', ref.spec, ref, ref.spec.thresholds, SETTINGS, 0);
  const r = rng(seed);
  const out: DriftReport[] = [];
  for (let i = 0; i < windows; i++) {
    for (let j = 0; j < 10; j++) w.add(tabularBatch(r, 100, shift), {}, i);
    out.push(w.close('count', i + 1, 'dev'));
  }
  return out;
}

t.test('no drift: warnings and alerts at most at the configured false-alarm rates', async (t) => {
  const n = 150;
  const reports = monitorWindows(11, n);
  t.ok(reports.every((r) => r.window.size === 1000), 'windows of 1000');
  const alerts = reports.filter((r) => r.verdict === 'alert').length;
  const warned = reports.filter((r) => r.verdict !== 'ok').length;
  const featureDrifts = reports.reduce((s, r) => s + r.features.filter((f) => f.verdict === 'drift').length, 0);
  // Targets 1% warn, 0.1% alert; over 150 windows allow the binomial 99.9% bound (5 and 1).
  t.ok(warned <= 5, `windows not ok: ${warned}/${n} (target 1%)`);
  t.ok(alerts <= 1, `alerts: ${alerts}/${n} (target 0.1%)`);
  t.ok(featureDrifts <= 1, `feature drift verdicts: ${featureDrifts} over ${n} windows`);
  t.equal(reports[0].alpha.tests, 4 * 4 + 3, 'tests per window: 4 numeric features x 4 statistics, 1 categorical x 3');
});

function firstDetection(reports: DriftReport[], feature: string): number {
  return reports.findIndex((r) => r.features.some((f) => f.name === feature && f.verdict === 'drift'));
}

for (const [label, shift, feature] of [
  ['mean shift of half a standard deviation on a', { meanA: 0.5 }, 'a'],
  ['scale shift (x1.5) on b', { scaleB: 1.5 }, 'b'],
  ['a category that appears from nowhere (10% of rows) in color', { newColor: 0.1 }, 'color'],
] as [string, Shift, string][]) {
  t.test(`${label}: detected within 2 windows, that feature named, the others at most at the false-alarm rate`, async (t) => {
    const n = 20;
    const reports = monitorWindows(31, n, shift);
    const at = firstDetection(reports, feature);
    t.ok(at >= 0 && at < 2, `first detected in window ${at}`);
    t.same(reports[at].features.filter((f) => f.verdict === 'drift').map((f) => f.name), [feature], 'the detecting report names the shifted feature only');
    const hits = reports.filter((r) => r.features.some((f) => f.name === feature && f.verdict === 'drift')).length;
    t.ok(hits >= n - 1, `shifted feature drifts in ${hits}/${n} windows`);
    const others = reports.filter((r) => r.features.some((f) => f.name !== feature && f.verdict === 'drift'));
    t.ok(others.length <= n * 0.05, `another feature drifted in ${others.length}/${n} windows (windows ${others.map((r) => r.window.seq).join(',') || 'none'}; family-wise rate 0.05)`);
    const tops = reports.filter((r) => r.features.slice().sort((x, y) => y.score - x.score)[0].name === feature).length;
    t.ok(tops >= n - 1, `the highest score is on the shifted feature in ${tops}/${n} windows`);
    t.ok(reports.every((r) => r.verdict !== 'ok' && !r.dataset.drifted), 'one feature of five: a warning, not a dataset drift');
    if (feature === 'color') t.ok(reports[0].features.find((f) => f.name === 'color')!.novel > 0.05, 'novel share reported');
  });
}

t.test('a shift on most features drifts the dataset: alert', async (t) => {
  const ref = loadReference(reference);
  const w = new DriftWindow('tab', '1', ref.spec, ref, ref.spec.thresholds, SETTINGS, 0);
  const r = rng(5);
  for (let j = 0; j < 10; j++) {
    const b = tabularBatch(r, 100, { meanA: 1, scaleB: 2, newColor: 0.3 });
    const x = b.x.data as Float32Array;
    for (let i = 0; i < 100; i++) x[i * 4 + 2] += 1; // c shifted too: 4 of 5 features
    w.add(b, {}, 0);
  }
  const rep = w.close('count', 1, 'dev');
  t.equal(rep.verdict, 'alert');
  t.ok(rep.dataset.drifted && rep.dataset.share >= 0.5, `share ${rep.dataset.share}`);
  t.same(rep.dataset.driftedFeatures.sort(), ['a', 'b', 'c', 'color']);
});

t.test('a small window gets no verdict', async (t) => {
  const ref = loadReference(reference);
  const w = new DriftWindow('tab', '1', ref.spec, ref, ref.spec.thresholds, SETTINGS, 0);
  w.add(tabularBatch(rng(3), 50, { meanA: 3 }), {}, 0);
  const rep = w.close('time', 1, 'dev');
  t.equal(rep.verdict, 'insufficient');
  t.ok(rep.features.every((f) => f.verdict === 'ok'));
  t.equal(rep.window.size, 50);
  // Nothing in the report says drift when there is no verdict (a shifted window, meanA 3).
  t.same([rep.dataset.drifted, rep.dataset.share, rep.dataset.driftedFeatures, rep.prediction.drifted, rep.prediction.driftedFeatures], [false, 0, [], false, []]);
  t.ok(rep.features.every((f) => f.score === 0 && /no verdict/.test(f.reasons[0] ?? '')), 'no score that ranks as an alarm; the reason is given');
});

t.test('a fixed level in the manifest overrides the calibrated one of its statistic only', async (t) => {
  const r8 = rng(8);
  const strict = buildReference(Array.from({ length: 10 }, () => ({ inputs: tabularBatch(r8, 500) })), { ...TABULAR_SPEC, thresholds: { psiWarn: 0.0001, falseWarnRate: 0.05 } }, { sizes: [1000] });
  t.same(strict.spec.thresholds, { psiWarn: 0.0001, falseWarnRate: 0.05 }, 'the manifest keeps what was declared, not the defaults');
  const ref = loadReference(strict);
  t.equal(ref.spec.thresholds.psiAlert, undefined, 'no fixed PSI alert level unless declared');
  t.equal(ref.spec.thresholds.falseAlertRate, 0.001, 'the rest keep their defaults');
  const w = new DriftWindow('tab', '1', ref.spec, ref, ref.spec.thresholds, SETTINGS, 0);
  for (let j = 0; j < 10; j++) w.add(tabularBatch(rng(100 + j), 100), {}, 0);
  const rep = w.close('count', 1, 'dev');
  t.ok(rep.features.every((f) => f.verdict === 'warn'), 'with a tiny fixed PSI warning level every feature warns');
  t.ok(rep.features.every((f) => f.tests.find((x) => x.statistic === 'psi')!.basis === 'fixed'), 'PSI is held to the fixed level');
  t.ok(rep.features.every((f) => f.tests.filter((x) => x.statistic !== 'psi').every((x) => x.basis !== 'fixed')), 'the other statistics stay calibrated');
  t.equal(rep.alpha.tests, 4 * 3 + 2, 'PSI with a fixed level is no longer one of the corrected tests');
  t.ok(Math.abs(rep.alpha.warn - (1 - Math.pow(1 - 0.05, 1 / 14))) < 1e-12, `Sidak level for 5% over 14 tests: ${rep.alpha.warn}`);
  t.throws(() => loadReference({ ...strict, spec: { ...strict.spec, thresholds: { ksPValue: 0.5 } } }), { code: 'EDGE_DRIFT_SPEC_INVALID', message: /ksPValue" is no longer used; it was replaced by falseWarnRate/ }, 'a retired key is refused with what replaced it');
});

t.test('ADWIN: quiet on a stationary stream, detects a mean change', async (t) => {
  const r = rng(77);
  const quiet = new Adwin(0.002);
  for (let i = 0; i < 20_000; i++) quiet.update(0.8 + 0.05 * normal(r));
  t.equal(quiet.detections, 0, 'no change, no detection over 20000 values');
  t.ok(quiet.width > 10_000, `window keeps growing (${quiet.width})`);
  const a = new Adwin(0.002);
  for (let i = 0; i < 2000; i++) a.update(0.8 + 0.05 * normal(r));
  let at = -1;
  for (let i = 0; i < 2000 && at < 0; i++) if (a.update(0.6 + 0.05 * normal(r))) at = i;
  t.ok(at >= 0 && at < 200, `mean 0.8 -> 0.6 detected after ${at} values`);
  for (let i = 0; i < 400; i++) a.update(0.6 + 0.05 * normal(r));
  t.ok(Math.abs(a.mean - 0.6) < 0.03, `the window has dropped the old values (mean ${a.mean.toFixed(3)}, width ${a.width})`);
  t.throws(() => new Adwin(0), /delta/);
});

t.test('Page-Hinkley (threshold 50, delta 0.005): quiet on a stationary confidence stream, detects a drop and a rise', async (t) => {
  const r = rng(78);
  const conf = (mean: number) => Math.min(1, Math.max(0, mean + 0.05 * normal(r)));
  const quiet = new PageHinkley();
  for (let i = 0; i < 50_000; i++) quiet.update(conf(0.9));
  t.equal(quiet.detections, 0, 'no change, no detection over 50000 values');
  const ph = new PageHinkley();
  for (let i = 0; i < 1000; i++) ph.update(conf(0.9));
  let at = -1, dir: string | undefined;
  for (let i = 0; i < 1000 && at < 0; i++) {
    dir = ph.update(conf(0.6));
    if (dir) at = i;
  }
  t.ok(at >= 0 && at < 250, `confidence 0.9 -> 0.6 detected after ${at} values`);
  t.equal(dir, 'down');
  const up = new PageHinkley();
  for (let i = 0; i < 1000; i++) up.update(conf(0.5));
  let d: string | undefined;
  for (let i = 0; i < 1000 && !d; i++) d = up.update(conf(0.9));
  t.equal(d, 'up');
  const early = new PageHinkley({ minSamples: 30 });
  let fired = false;
  for (let i = 0; i < 29; i++) fired ||= Boolean(early.update(i < 10 ? 0 : 1000));
  t.notOk(fired, 'nothing before minSamples');
  t.ok(early.update(1000) !== undefined, 'and at minSamples the jump is seen');
});

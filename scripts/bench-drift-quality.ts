// How far drift verdicts can be trusted (issue 27): the false-alarm rate on in-distribution data
// per window size, the detection power on shifts of known size, and how many windows the online
// detectors (ADWIN, Page-Hinkley on the top-class confidence) take to notice the same shifts.
//   npm run bench:drift-quality [-- --windows 200 --seed 27]
// Digits: the shipped models/digits-int8 package (ONNX Runtime, one run per image), held-out digits.
// Tabular: synthetic rows (4 numeric features, 1 categorical; test/drift-fixtures.ts) from a known
// generator, so windows up to 10,000 are fresh samples, not resamples.
import os from 'node:os';
import { Adwin, PageHinkley } from '../agent/drift/detectors.js';
import { FeatureExtractor } from '../agent/drift/features.js';
import { compareProfiles } from '../agent/drift/compare.js';
import { buildReference, loadReference, referenceFromRows } from '../agent/drift/reference.js';
import { DEFAULT_THRESHOLDS } from '../agent/drift/spec.js';
import { heldOutDigits, heldOutHalves } from '../tools/edge-model/digits.js';
import { DIGIT_SHIFTS, NO_SHIFT, type DigitShift } from '../tools/drift-quality/digit-shifts.js';
import { digitFeatureRows, openPackage, type FeatureRows } from '../tools/drift-quality/feature-rows.js';
import { countVerdicts, flagged, splitFalseAlarms, type VerdictCounts } from '../tools/drift-quality/window-verdicts.js';
import { mulberry32 } from '../tools/prng.js';
import { tabularBatch, TABULAR_SPEC, type Shift } from '../test/drift-fixtures.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const WINDOWS = arg('windows', 200);
const SEED = arg('seed', 27);
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const rates = (c: VerdictCounts): string => `${pct(flagged(c)).padStart(7)} ${pct(c.alert / c.windows).padStart(7)}`;
const t0 = performance.now();

const cpus = os.cpus();
console.log(`drift quality: false alarms and detection power; cpu: ${cpus[0]?.model ?? 'unknown'} (${cpus.length} cores), node ${process.version}, ${os.platform()}/${os.arch()}`);
console.log(`targets: falseWarnRate ${DEFAULT_THRESHOLDS.falseWarnRate}, falseAlertRate ${DEFAULT_THRESHOLDS.falseAlertRate} (defaults); flagged = warn or alert; ${WINDOWS} windows per row, seed ${SEED}`);

// --- digits ---------------------------------------------------------------------------------
const model = await openPackage('models/digits-int8');
const reference = loadReference(model.drift, 'digits-int8 drift reference');
const features = reference.spec.features;
const all = heldOutDigits();
const allRows = await digitFeatureRows(model, features, all.images, all.count);
const { evaluation } = heldOutHalves();

console.log(`\ndigits (models/digits-int8, ${features.length} features: ${features.map((f) => f.name).join(', ')})`);
console.log('false alarms on in-distribution held-out digits: 2,000 split at random into a reference of 1,000 (rebuilt and');
console.log('calibrated per split) and disjoint windows from the other 1,000; larger windows need more held-out digits than mnist has');
console.log('  window  windows  flagged   alert');
const sizes = [100, 300, 500, 1000];
const fa = splitFalseAlarms(reference.spec, allRows, { referenceSize: 1000, windowSizes: sizes, windows: WINDOWS, seed: SEED, sketchK: 512 });
for (const n of sizes) console.log(`  ${String(n).padStart(6)}  ${String(fa.get(n)!.windows).padStart(7)}  ${rates(fa.get(n)!)}`);
for (const n of [2000, 5000, 10_000]) console.log(`  ${String(n).padStart(6)}        -        n/a (see tabular)`);

console.log('\ndetection power: the shipped reference; windows drawn with replacement from the shifted evaluation half (1,000 digits)');
console.log(`  ${'shift'.padEnd(28)} ${[300, 500, 1000].map((n) => `  flagged   alert @${n}`.padEnd(22)).join('')}`);
const shiftedRows = new Map<DigitShift, FeatureRows>();
for (const shift of [NO_SHIFT, ...DIGIT_SHIFTS]) {
  const images = shift.images ? shift.images(evaluation, mulberry32(SEED + 1)) : evaluation.images;
  const rows = await digitFeatureRows(model, features, images, evaluation.count);
  shiftedRows.set(shift, rows);
  const cells = [300, 500, 1000].map((n) => rates(countVerdicts(reference, rows, { windowSize: n, windows: WINDOWS, seed: SEED + n, pick: shift.pick?.(evaluation) })).padEnd(22));
  console.log(`  ${shift.name.padEnd(28)} ${cells.join('')}`);
}
console.log('  (the "none" row resamples one pool of 1,000 with replacement: it carries that pool\'s own deviation, so it reads higher than the split rates above)');

// --- online detectors ---------------------------------------------------------------------------
// The agent's defaults (config drift.detectors): ADWIN delta 0.002, Page-Hinkley delta 0.005,
// threshold 50, 30 samples. The stream is the top-class confidence, as the agent watches it:
// 2,000 in-distribution values, then the shifted stream; the count is values after the change
// until the first detection, in windows of 500. The window verdict's own figure for comparison:
// the first window of 500 after the change flagged in the power table above (1 = the first).
const confidence = features.findIndex((f) => f.extract.op === 'maxprob');
console.log(`\nonline detectors on the top-class confidence (${features[confidence].name}), agent defaults; 2,000 in-distribution values, then the shift;`);
console.log('windows of 500 until the first detection after the change (median over 20 runs; "-" = not within 20 windows), false detections before it');
console.log(`  ${'shift'.padEnd(28)}  ${'ADWIN'.padEnd(18)}  ${'Page-Hinkley'.padEnd(18)}  window verdict`);
for (const [shift, rows] of shiftedRows) {
  if (shift === NO_SHIFT) continue;
  const runs = { adwin: [] as number[], ph: [] as number[], falseAdwin: 0, falsePh: 0 };
  const before = shiftedRows.get(NO_SHIFT)!;
  for (let run = 0; run < 20; run++) {
    const r = mulberry32(SEED * 1000 + run);
    const pickShift = shift.pick?.(evaluation) ?? ((rr: () => number) => (rr() * rows.count) | 0);
    const adwin = new Adwin(0.002), ph = new PageHinkley({ delta: 0.005, threshold: 50, minSamples: 30 });
    for (let i = 0; i < 2000; i++) {
      const x = before.values[((r() * before.count) | 0) * before.width + confidence];
      if (adwin.update(x)) runs.falseAdwin++;
      if (ph.update(x)) runs.falsePh++;
    }
    let a = -1, p = -1;
    for (let i = 0; i < 20 * 500 && (a < 0 || p < 0); i++) {
      const x = rows.values[pickShift(r) * rows.width + confidence];
      if (adwin.update(x) && a < 0) a = i;
      if (ph.update(x) && p < 0) p = i;
    }
    runs.adwin.push(a < 0 ? Infinity : Math.floor(a / 500) + 1);
    runs.ph.push(p < 0 ? Infinity : Math.floor(p / 500) + 1);
  }
  const median = (xs: number[]) => {
    const s = xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    return Number.isFinite(s) ? String(s) : '-';
  };
  const cell = (xs: number[], falses: number) => `${median(xs).padStart(3)} (${falses} false)`.padEnd(18);
  const first = countVerdicts(reference, rows, { windowSize: 500, windows: 1, seed: SEED, pick: shift.pick?.(evaluation) });
  console.log(`  ${shift.name.padEnd(28)}  ${cell(runs.adwin, runs.falseAdwin)}  ${cell(runs.ph, runs.falsePh)}  ${flagged(first) ? 1 : 'not the first'}`);
}
model.session.release();

// --- tabular (a known generator) -------------------------------------------------------------
// A fresh reference of 5,000 rows per window: its own sampling noise varies from window to
// window as it would from package to package, so the rate is the method's, not one reference's.
console.log('\ntabular (synthetic: a~N(0,1), b~N(5,2), c~Exp(1), d~U(0,1), color in {0,1,2}; 5 features), reference of 5,000 rows');
console.log('false alarms, each window against its own freshly drawn and calibrated reference');
console.log('  window  windows  flagged   alert');
const tabularRef = buildReference([{ inputs: tabularBatch(mulberry32(SEED), 5000) }], TABULAR_SPEC, { sizes: [100] });
const tabSpec = loadReference(tabularRef).spec;
const ex = new FeatureExtractor(tabSpec.features);
const rowsOf = (r: () => number, n: number, shift: Shift = {}): Float64Array[] => {
  const b = tabularBatch(r, n, shift);
  return Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(ex.width);
    ex.extract(b, {}, i, row);
    return row;
  });
};
const from = tabSpec.features.map((f) => f.from);
for (const n of [100, 300, 1000, 3000, 10_000]) {
  const r = mulberry32(SEED + n);
  const c: VerdictCounts = { windows: 0, ok: 0, warn: 0, alert: 0 };
  for (let w = 0; w < WINDOWS; w++) {
    const ref = loadReference(referenceFromRows(tabSpec, rowsOf(r, 5000), 512, { sizes: [n] }));
    const win = ref.profile.emptyLike(200);
    for (const row of rowsOf(r, n)) win.add(row);
    c[compareProfiles(ref.profile, win, from, ref.spec.thresholds, ref.calibration).verdict]++;
    c.windows++;
  }
  console.log(`  ${String(n).padStart(6)}  ${String(c.windows).padStart(7)}  ${rates(c)}`);
}
console.log('detection power (one reference, the package\'s calibration grid)');
const tabular = loadReference(buildReference([{ inputs: tabularBatch(mulberry32(SEED), 5000) }], TABULAR_SPEC));
console.log(`  ${'shift'.padEnd(28)} ${[300, 1000].map((n) => `  flagged   alert @${n}`.padEnd(22)).join('')}`);
for (const [name, shift] of [['a mean +0.2 sd', { meanA: 0.2 }], ['a mean +0.5 sd', { meanA: 0.5 }], ['b spread x1.3', { scaleB: 1.3 }], ['new color in 5% of rows', { newColor: 0.05 }]] as [string, Shift][]) {
  const cells = [300, 1000].map((n) => {
    const r = mulberry32(SEED + n + 7);
    const c: VerdictCounts = { windows: 0, ok: 0, warn: 0, alert: 0 };
    for (let w = 0; w < WINDOWS; w++) {
      const win = tabular.profile.emptyLike(200);
      for (const row of rowsOf(r, n, shift)) win.add(row);
      c[compareProfiles(tabular.profile, win, from, tabular.spec.thresholds, tabular.calibration).verdict]++;
      c.windows++;
    }
    return rates(c).padEnd(22);
  });
  console.log(`  ${name.padEnd(28)} ${cells.join('')}`);
}
console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s`);

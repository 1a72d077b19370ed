// The calibration of a drift reference (agent/drift/calibration.ts): seeded and reproducible,
// the same moments whichever sizes are calibrated together, stored and reloaded exactly,
// interpolated between sizes and bootstrapped below them; the binomial sampler and the gamma
// tail it rests on; and a reference written before calibration still loads.
import t from 'tap';
import { binomial, gammaQuantileAbove, gammaSurvival, WindowCalibration } from '../agent/drift/calibration.js';
import { buildReference, loadReference } from '../agent/drift/reference.js';
import { rng, tabularBatch, TABULAR_SPEC } from './drift-fixtures.js';

t.setTimeout(60_000);

const built = buildReference([{ inputs: tabularBatch(rng(3), 4000) }], TABULAR_SPEC, { sizes: [100, 500, 1000, 0], replicates: 200 });
const { profile } = loadReference(built);

t.test('seeded: the same reference gives the same calibration, whichever sizes go together', async (t) => {
  const a = new WindowCalibration(profile, { replicates: 200 }).calibrate([500]);
  const b = new WindowCalibration(profile, { replicates: 200 }).calibrate([100, 500, 2000]);
  for (let i = 0; i < profile.features.length; i++) {
    t.same(a.nullOf(i, 'psi', 500), b.nullOf(i, 'psi', 500), `${profile.names[i]}: PSI null at 500`);
  }
  t.same(new WindowCalibration(profile, { replicates: 200 }).calibrate([500]).encode(), a.encode(), 'encodings equal');
  t.notSame(new WindowCalibration(profile, { replicates: 200, seed: 99 }).calibrate([500]).encode(), a.encode(), 'another seed, other replicates');
});

t.test('stored in the reference and reloaded exactly; levels fall as windows grow', async (t) => {
  t.same(built.calibration!.sizes, [100, 500, 1000, 0]);
  const fresh = new WindowCalibration(profile, { replicates: 200 }).calibrate([100, 500, 1000, 0]);
  const loaded = loadReference(built).calibration;
  for (const n of [100, 500, 1000]) {
    const [m1, s1] = fresh.nullOf(0, 'psi', n)!, [m2, s2] = loaded.nullOf(0, 'psi', n)!;
    t.ok(Math.abs(m1 - m2) <= 1e-5 * m1 && Math.abs(s1 - s2) <= 1e-5 * s1, `moments at ${n} survive the manifest (6 digits)`);
  }
  const at = (n: number) => loaded.level(0, 'psi', n, 1e-4)!;
  t.ok(at(100) > at(500) && at(500) > at(1000) && at(1000) > at(1e9), `PSI level at p 1e-4: ${[100, 500, 1000, 1e9].map((n) => at(n).toPrecision(3)).join(' > ')}`);
});

t.test('between calibrated sizes: linear in 1/n; below the smallest: bootstrapped on demand', async (t) => {
  const c = loadReference(built).calibration;
  const [m500] = c.nullOf(0, 'jensenShannon', 500)!, [m1000] = c.nullOf(0, 'jensenShannon', 1000)!, [m700] = c.nullOf(0, 'jensenShannon', 700)!;
  const w = (1 / 700 - 1 / 1000) / (1 / 500 - 1 / 1000);
  t.ok(Math.abs(m700 - (m1000 + w * (m500 - m1000))) < 1e-12, 'interpolated in 1/n');
  t.same(c.sizes, [100, 500, 1000, 0], 'interpolation adds no size');
  const below = c.nullOf(0, 'psi', 40)!;
  t.same(c.sizes, [40, 100, 500, 1000, 0], 'a window of 40 was bootstrapped');
  t.same(below, new WindowCalibration(profile, { replicates: 200 }).calibrate([40]).nullOf(0, 'psi', 40), 'as a fresh calibration at 40 gives');
  t.same(c.encode().sizes, [100, 500, 1000, 0], 'on-demand sizes are not written back');
});

t.test('binomial counts: mean and variance (inversion below 30 expected, normal above)', async (t) => {
  for (const [n, p] of [[50, 0.1], [10_000, 0.03], [1000, 0.7]] as const) {
    const r = rng(n);
    let s = 0, s2 = 0;
    const k = 20_000;
    for (let i = 0; i < k; i++) {
      const x = binomial(r, n, p);
      s += x;
      s2 += x * x;
    }
    const mean = s / k, v = s2 / k - mean * mean;
    t.ok(Math.abs(mean - n * p) < 4 * Math.sqrt((n * p * (1 - p)) / k), `Binomial(${n}, ${p}): mean ${mean.toFixed(2)} vs ${n * p}`);
    t.ok(Math.abs(v / (n * p * (1 - p)) - 1) < 0.05, `variance ${v.toFixed(1)} vs ${(n * p * (1 - p)).toFixed(1)}`);
  }
});

t.test('gamma tail: an exponential when the spread equals the mean; the quantile inverts it', async (t) => {
  t.ok(Math.abs(gammaSurvival([2, 2], 6) - Math.exp(-3)) < 1e-12, 'shape 1: exp(-t/mean)');
  for (const p of [1e-2, 1e-4, 1e-6]) {
    const q = gammaQuantileAbove([0.04, 0.013], p);
    t.ok(Math.abs(gammaSurvival([0.04, 0.013], q) / p - 1) < 1e-6, `survival(quantile(${p})) = ${p}`);
  }
  t.equal(gammaSurvival([0, 0], 0), 1, 'a null that is always 0: 0 is not surprising');
  t.equal(gammaSurvival([0, 0], 1e-3), 0, 'anything above it is');
});

t.test('a reference written before calibration loads: filled-in defaults dropped, calibrated on load', async (t) => {
  const legacy = JSON.parse(JSON.stringify(built));
  delete legacy.calibration;
  legacy.spec.thresholds = { psiWarn: 0.1, psiAlert: 0.4, jensenShannon: 0.1, wasserstein: 0.1, ksPValue: 0.05, chiSquarePValue: 0.05, bonferroni: true, datasetDriftShare: 0.5 };
  const l = loadReference(legacy);
  t.same(l.spec.thresholds, { falseWarnRate: 0.01, falseAlertRate: 0.001, datasetDriftShare: 0.5, psiAlert: 0.4 }, 'only the non-default fixed level survives');
  t.same(l.calibration.sizes, [100, 200, 500, 1000, 2000, 5000, 10_000, 0], 'calibrated at the default sizes');
});

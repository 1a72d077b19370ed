// Profiles are mergeable: k random splits of a window, profiled apart and merged, give the
// profile of the whole window (histograms and counts exactly, the quantile sketch within its
// error bound); encoding round-trips.
import t from 'tap';
import { buildReference, FixedHistogram, KllSketch, loadReference, Profile, type NumericProfile, type CategoricalProfile } from '../agent/drift/index.js';
import { FeatureExtractor } from '../agent/drift/features.js';
import { normal, rng, tabularBatch, TABULAR_SPEC } from './drift-fixtures.js';

function exactRankError(sk: KllSketch, values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  let worst = 0;
  for (let i = 0; i < sorted.length; i += Math.max(1, Math.floor(sorted.length / 200))) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[i]) j++;
    worst = Math.max(worst, Math.abs(sk.cdf(sorted[i]) - (j + 1) / sorted.length));
  }
  return worst;
}

t.test('KLL: rank error within the stated bound, alone and merged', async (t) => {
  for (const [seed, n] of [[101, 3000], [202, 30_000], [303, 120_000]]) {
    const r = rng(seed);
    const xs = Array.from({ length: n }, () => normal(r) * 3 + 1);
    const whole = new KllSketch(200, seed);
    for (const x of xs) whole.update(x);
    t.ok(exactRankError(whole, xs) <= whole.rankErrorBound, `n=${n}: whole within ${whole.rankErrorBound}`);
    t.ok(whole.size < 3.5 * 200, `n=${n}: ${whole.size} items stored (bounded)`);
    t.equal(whole.n, n);
    t.equal(whole.min, Math.min(...xs));
    t.equal(whole.max, Math.max(...xs));
  }
});

t.test('histograms: values land in the right bins, out of range and missing are counted', async (t) => {
  const h = new FixedHistogram([0, 1, 2, 4]);
  for (const x of [-1, 0, 0.5, 1, 1.99, 2, 4, 4.01, NaN]) h.add(x);
  t.same(Array.from(h.counts), [1, 2, 2, 2, 1], 'below, [0,1), [1,2), [2,4], above');
  t.equal(h.missing, 1);
  t.equal(h.outOfRange, 2);
  t.throws(() => new FixedHistogram([0, 0, 1]), /increase strictly/);
  t.throws(() => h.merge(new FixedHistogram([0, 1])), /different edges/);
});

t.test('profile of k random splits, merged, equals the profile of the whole window', async (t) => {
  const r = rng(7);
  const reference = buildReference(Array.from({ length: 20 }, () => ({ inputs: tabularBatch(r, 250) })), TABULAR_SPEC);
  const { spec, profile: ref } = loadReference(reference);
  const ex = new FeatureExtractor(spec.features);
  const rows: Float64Array[] = [];
  for (let i = 0; i < 10; i++) {
    const batch = tabularBatch(r, 500);
    for (let b = 0; b < 500; b++) {
      const row = new Float64Array(ex.width);
      ex.extract(batch, {}, b, row);
      if (b % 97 === 0) row[2] = NaN; // some missing values
      rows.push(row);
    }
  }
  const whole = ref.emptyLike(200);
  for (const row of rows) whole.add(row);

  for (const k of [2, 3, 5, 8]) {
    const parts = Array.from({ length: k }, () => ref.emptyLike(200));
    for (const row of rows) parts[Math.floor(r() * k)].add(row);
    // Through the wire format too: devices send encoded profiles.
    const merged = Profile.decode(JSON.parse(JSON.stringify(parts[0].encode())));
    for (let i = 1; i < k; i++) merged.merge(Profile.decode(JSON.parse(JSON.stringify(parts[i].encode()))));
    t.equal(merged.rows, whole.rows, `k=${k}: rows`);
    merged.features.forEach((f, i) => {
      const w = whole.features[i];
      const name = whole.names[i];
      if (f.type === 'numeric') {
        const wn = w as NumericProfile;
        t.same(Array.from(f.hist.counts), Array.from(wn.hist.counts), `k=${k} ${name}: histogram counts exactly equal`);
        t.equal(f.hist.missing, wn.hist.missing, `k=${k} ${name}: missing exactly equal`);
        t.equal(f.n, wn.n, `k=${k} ${name}: n`);
        t.ok(Math.abs(f.mean - wn.mean) < 1e-9 && Math.abs(f.std - wn.std) < 1e-9, `k=${k} ${name}: moments`);
        const values = rows.map((row) => row[i]).filter((x) => x === x);
        const err = exactRankError(f.sketch, values);
        t.ok(err <= f.sketch.rankErrorBound, `k=${k} ${name}: merged sketch rank error ${err.toFixed(4)} <= ${f.sketch.rankErrorBound.toFixed(4)}`);
      } else {
        const wc = w as CategoricalProfile;
        t.same([...f.counts.counts].sort(), [...wc.counts.counts].sort(), `k=${k} ${name}: category counts exactly equal`);
      }
    });
  }
});

t.test('reference: resolved features, quantile edges, and clear errors for bad specs', async (t) => {
  const r = rng(9);
  const samples = Array.from({ length: 4 }, () => ({ inputs: tabularBatch(r, 250) }));
  const ref = buildReference(samples, TABULAR_SPEC);
  t.same(ref.spec.features.map((f) => f.name), ['a', 'b', 'c', 'd', 'color']);
  t.equal(ref.samples, 1000);
  const { profile } = loadReference(JSON.parse(JSON.stringify(ref)));
  const d = profile.get('d') as NumericProfile;
  t.equal(d.hist.bins, 20, 'twenty bins at the quantiles');
  const inner = Array.from(d.hist.counts).slice(1, -1);
  t.ok(Math.max(...inner) - Math.min(...inner) <= 3, `reference bins hold about the same count (${inner.join(' ')})`);
  t.throws(() => buildReference(samples, { inputs: [{ kind: 'numeric', tensor: 'nope' }] }), { code: 'EDGE_DRIFT_SPEC_INVALID', message: /input tensor "nope" is not in the samples \(inputs: x, color\)/ });
  t.throws(() => buildReference(samples, { inputs: [{ kind: 'numeric', tensor: 'x', index: 9 }] }), /index 9 is outside x's 4 values/);
  t.throws(() => buildReference(samples, { inputs: [{ kind: 'wat', tensor: 'x' } as never] }), /unknown feature kind "wat"/);
  t.throws(() => buildReference(samples, { inputs: TABULAR_SPEC.inputs, thresholds: { psiAlert: -1 } }), /psiAlert must be a number >= 0/);
  t.throws(() => loadReference({ format: 'nope' }), /edge-drift-reference\/1/);
});

t.test('image features: per-channel mean, std and percentiles of each sample', async (t) => {
  // two samples [2, 2 channels, 2x2], NCHW
  const data = new Float32Array([
    0, 0.25, 0.5, 1, /* c1 */ 1, 1, 1, 1,
    0.5, 0.5, 0.5, 0.5, /* c1 */ 0, 0, 0, 0.8,
  ]);
  const inputs = { img: { dtype: 'float32' as const, shape: [2, 2, 2, 2], data } };
  const ref = buildReference([{ inputs }], { inputs: [{ kind: 'image', tensor: 'img', summaries: ['mean', 'std', 'p50'], range: [0, 1] }] });
  t.same(ref.spec.features.map((f) => f.name), ['img.c0.mean', 'img.c0.std', 'img.c0.p50', 'img.c1.mean', 'img.c1.std', 'img.c1.p50']);
  const ex = new FeatureExtractor(ref.spec.features);
  const row = new Float64Array(ex.width);
  ex.extract(inputs, {}, 0, row);
  const std0 = Math.sqrt([0, 0.25, 0.5, 1].reduce((s, x) => s + (x - 0.4375) ** 2, 0) / 4);
  t.ok(Math.abs(row[0] - 0.4375) < 1e-7 && Math.abs(row[1] - std0) < 1e-6, 'channel 0 mean and std');
  t.ok(Math.abs(row[2] - 0.5) < 1 / 256 + 1e-9 || Math.abs(row[2] - 0.25) < 1 / 256 + 1e-9, `channel 0 median ${row[2]} (between 0.25 and 0.5, within a 1/256 bin)`);
  t.ok(Math.abs(row[3] - 1) < 1e-7 && row[4] < 1e-6, 'channel 1 constant: mean 1, std 0');
  ex.extract(inputs, {}, 1, row);
  t.ok(Math.abs(row[0] - 0.5) < 1e-7 && Math.abs(row[3] - 0.2) < 1e-7, 'second sample');
  ex.extract({}, {}, 0, row);
  t.ok(row.every((x) => Number.isNaN(x)), 'a missing tensor gives missing values, not an error');
});

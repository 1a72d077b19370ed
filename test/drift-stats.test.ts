// Each drift statistic against values computed here another way, on small hand-made cases.
import t from 'tap';
import { stats } from '../agent/drift/index.js';
import { rng } from './drift-fixtures.js';

const { psi, jensenShannon, wasserstein1, ksStatistic, ksPValue, kolmogorovQ, chiSquare, chiSquareSurvival } = stats;

const sample = (xs: number[]) => {
  const v = xs.slice().sort((a, b) => a - b);
  return { values: v, weights: v.map(() => 1) };
};

t.test('PSI: the definition worked by hand', async (t) => {
  // e = [.1 .2 .3 .4], a = [.2 .2 .3 .3]: 0.1 ln 2 + (-0.1) ln(0.3/0.4) = 0.0693147 + 0.0287682
  t.ok(Math.abs(psi([10, 20, 30, 40], [20, 20, 30, 30]) - 0.0980829) < 1e-6, 'hand value');
  t.equal(psi([5, 5, 5], [50, 50, 50]), 0, 'same proportions, any totals: 0');
  // an empty reference bin counts as 1e-4: (0.5 - 1e-4) ln(0.5 / 1e-4) + (0.5 - 1) ln(0.5 / 1)
  const expected = (0.5 - 1e-4) * Math.log(0.5 / 1e-4) + (0.5 - 1) * Math.log(0.5);
  t.ok(Math.abs(psi([0, 10], [5, 5]) - expected) < 1e-9, 'empty bins lifted to 1e-4');
  t.ok(psi([1, 2, 3], [3, 2, 1]) > 0 && Math.abs(psi([1, 2, 3], [3, 2, 1]) - psi([3, 2, 1], [1, 2, 3])) < 1e-12, 'symmetric and positive');
  t.throws(() => psi([1, 2], [1, 2, 3]), /share bins/);
});

t.test('Jensen-Shannon distance: extremes and a hand value', async (t) => {
  t.equal(jensenShannon([1, 2, 3], [2, 4, 6]), 0, 'equal distributions');
  t.ok(Math.abs(jensenShannon([1, 0], [0, 1]) - Math.sqrt(Math.LN2)) < 1e-12, 'disjoint supports: sqrt(ln 2)');
  // p = [.5 .5], q = [.9 .1], m = [.7 .3]
  const kl = (a: number[], b: number[]) => a.reduce((s, x, i) => s + (x ? x * Math.log(x / b[i]) : 0), 0);
  const hand = Math.sqrt(0.5 * kl([0.5, 0.5], [0.7, 0.3]) + 0.5 * kl([0.9, 0.1], [0.7, 0.3]));
  t.ok(Math.abs(jensenShannon([5, 5], [9, 1]) - hand) < 1e-12, `hand value ${hand}`);
  t.ok(Math.abs(jensenShannon([5, 5], [9, 1]) - 0.3189815) < 1e-6, 'about 0.3189815 (worked in Python with math.log)');
});

t.test('Wasserstein-1: against the quantile-function integral', async (t) => {
  // W1 = integral over u in (0,1) of |F^-1(u) - G^-1(u)|; with equal sample sizes, the mean
  // absolute difference of the sorted samples.
  const a = [0, 1, 3, 7, 8], b = [2, 2, 4, 5, 11];
  const sa = a.slice().sort((x, y) => x - y), sb = b.slice().sort((x, y) => x - y);
  const byQuantiles = sa.reduce((s, x, i) => s + Math.abs(x - sb[i]), 0) / sa.length;
  t.ok(Math.abs(wasserstein1(sample(a), sample(b)) - byQuantiles) < 1e-12, `W1 = ${byQuantiles}`);
  t.equal(wasserstein1(sample([1, 2, 3]), sample([11, 12, 13])), 10, 'a pure shift by 10');
  t.ok(Math.abs(wasserstein1(sample([0]), sample([0, 0, 4])) - 4 / 3) < 1e-12, 'unequal sizes: a third of the mass moves 4');
  // weights act as repeated values
  t.equal(wasserstein1({ values: [0, 1], weights: [3, 1] }, sample([0, 0, 0, 1])), 0, 'weights = repeats');
});

t.test('KS statistic: against brute-force counting', async (t) => {
  const a = [0.1, 0.4, 0.45, 0.8, 0.9, 1.3], b = [0.2, 0.5, 0.55, 0.6, 1.5, 1.6, 1.7];
  let brute = 0;
  for (const x of [...a, ...b]) {
    const fa = a.filter((v) => v <= x).length / a.length, fb = b.filter((v) => v <= x).length / b.length;
    brute = Math.max(brute, Math.abs(fa - fb));
  }
  t.ok(Math.abs(ksStatistic(sample(a), sample(b)) - brute) < 1e-12, `D = ${brute}`);
  t.equal(ksStatistic(sample([1, 2, 3]), sample([1, 2, 3])), 0, 'identical samples');
  t.equal(ksStatistic(sample([1, 2]), sample([3, 4])), 1, 'separated samples');
  t.equal(ksStatistic(sample([1, 1, 2]), sample([1, 2, 2])), 1 / 3, 'ties counted at once');
});

t.test('KS p-value: the Kolmogorov distribution at its tabulated quantiles', async (t) => {
  // Classic critical values of the Kolmogorov distribution: P(K > 1.2238) = 0.10, 1.3581 -> 0.05, 1.6276 -> 0.01, 1.9495 -> 0.001
  for (const [lambda, p] of [[1.2238, 0.1], [1.3581, 0.05], [1.6276, 0.01], [1.9495, 0.001]]) {
    t.ok(Math.abs(kolmogorovQ(lambda) - p) / p < 0.002, `Q(${lambda}) = ${kolmogorovQ(lambda)} ~ ${p}`);
  }
  // Both branches (theta series below 1.18, alternating series above) agree with a long direct series.
  const direct = (l: number) => { let s = 0; for (let j = 1; j < 2000; j++) s += (j % 2 ? 2 : -2) * Math.exp(-2 * j * j * l * l); return s; };
  for (const l of [0.4, 0.7, 1.0, 1.17, 1.19, 1.5, 2.5]) t.ok(Math.abs(kolmogorovQ(l) - direct(l)) < 1e-9, `Q(${l}) matches the direct series`);
  t.equal(kolmogorovQ(0), 1);
  // p-value with Stephens' correction: n = m = 100, D = 0.2: en = sqrt(50)
  const en = Math.sqrt(50);
  t.ok(Math.abs(ksPValue(0.2, 100, 100) - direct((en + 0.12 + 0.11 / en) * 0.2)) < 1e-9, 'p for D=0.2, n=m=100');
  t.ok(ksPValue(0.2, 100, 100) > 0.02 && ksPValue(0.2, 100, 100) < 0.05, 'which is between 0.02 and 0.05 (scipy ks_2samp gives 0.0366 with the exact method)');
});

t.test('chi-square: a 2x3 table worked by hand, and df = 2 survival = exp(-x/2)', async (t) => {
  // reference [30 50 20] vs current [10 30 60]: N = 200, column totals [40 80 80], expected = half each
  const hand = [[30, 20], [50, 40], [20, 40], [10, 20], [30, 40], [60, 40]].reduce((s, [o, e]) => s + (o - e) ** 2 / e, 0);
  const r = chiSquare([30, 50, 20], [10, 30, 60]);
  t.ok(Math.abs(r.statistic - hand) < 1e-9, `statistic ${hand}`);
  t.equal(r.df, 2);
  t.ok(Math.abs(r.pValue - Math.exp(-hand / 2)) < 1e-12, 'p = exp(-x/2) for two degrees of freedom');
  // df = 1: P(X > 3.841459) = 0.05; df = 10: P(X > 18.307) = 0.05 (tables)
  t.ok(Math.abs(chiSquareSurvival(3.841459, 1) - 0.05) < 1e-6, 'df 1 critical value');
  t.ok(Math.abs(chiSquareSurvival(18.307038, 10) - 0.05) < 1e-6, 'df 10 critical value');
  t.ok(Math.abs(chiSquareSurvival(2, 4) - 2 * Math.exp(-1)) < 1e-12, 'df 4: (1 + x/2) exp(-x/2)');
  const same = chiSquare([10, 20, 30], [20, 40, 60]);
  t.equal(same.statistic, 0);
  t.equal(same.pValue, 1);
  t.equal(chiSquare([10, 0, 5], [3, 0, 2]).df, 1, 'categories empty on both sides are left out');
});

t.test('binned KS and W1: the CDF gaps at the edges, and the area between CDFs linear within bins', async (t) => {
  const { ksBinned, wasserstein1Binned, binnedStatistics } = stats;
  const edges = [0, 1, 2, 3];
  // [below, [0,1), [1,2), [2,3], above]
  t.equal(ksBinned([0, 10, 0, 0, 0], [0, 0, 0, 10, 0]), 1, 'all mass in the first bin against all in the last');
  t.ok(Math.abs(wasserstein1Binned(edges, [0, 10, 0, 0, 0], [0, 0, 0, 10, 0]) - 2) < 1e-12, 'uniform on [0,1) against uniform on [2,3]: moved by 2');
  t.ok(Math.abs(wasserstein1Binned(edges, [0, 5, 5, 0, 0], [0, 0, 5, 5, 0]) - 1) < 1e-12, 'uniform on [0,2) against [1,3]: moved by 1');
  t.equal(wasserstein1Binned(edges, [0, 3, 4, 3, 0], [0, 6, 8, 6, 0]), 0, 'same shares: 0');
  // A gap that changes sign inside a bin: |g| is two triangles, (g0^2 + g1^2) / (2 (|g0| + |g1|)) per unit width.
  t.ok(Math.abs(wasserstein1Binned([0, 1], [0, 10, 0], [5, 0, 5]) - 0.25) < 1e-12, 'half below the range, half above, against all in the bin');
  const r = rng(4);
  for (let k = 0; k < 20; k++) {
    const a = Array.from({ length: 6 }, () => Math.floor(r() * 20));
    const b = Array.from({ length: 6 }, () => Math.floor(r() * 20));
    const e = [0, 0.5, 1.5, 2, 4];
    const s = binnedStatistics(a, b, e, 2);
    t.ok(Math.abs(s.psi - psi(a, b)) < 1e-12 && Math.abs(s.jensenShannon - jensenShannon(a, b)) < 1e-12
      && Math.abs(s.ks! - ksBinned(a, b)) < 1e-12 && Math.abs(s.wasserstein! - wasserstein1Binned(e, a, b) / 2) < 1e-12,
    `one-pass binnedStatistics equals the separate functions (${a} vs ${b})`);
  }
});

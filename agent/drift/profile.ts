// A profile: for each feature, what a stream of its values looked like, in fixed memory and
// mergeable. Numeric: a fixed-bin histogram (edges from the reference), a KLL sketch and exact
// moments. Categorical: category counts. Windows, devices and the fleet all use this one type.
import { CategoryCounts, type EncodedCategories } from './categories.js';
import { FixedHistogram, type EncodedHistogram } from './histogram.js';
import { KllSketch, type EncodedKll } from './kll.js';

export class NumericProfile {
  readonly type = 'numeric' as const;
  readonly hist: FixedHistogram;
  readonly sketch: KllSketch;
  /** Welford's running moments over the non-missing values (merge by Chan's formula). */
  n = 0;
  mean = 0;
  m2 = 0;

  constructor(hist: FixedHistogram, sketch: KllSketch) {
    this.hist = hist;
    this.sketch = sketch;
  }

  static empty(edges: ArrayLike<number>, k: number, seed: number): NumericProfile {
    return new NumericProfile(new FixedHistogram(edges), new KllSketch(k, seed));
  }

  add(x: number): void {
    this.hist.add(x);
    if (x !== x) return;
    this.sketch.update(x);
    const n = ++this.n;
    const d = x - this.mean;
    this.mean += d / n;
    this.m2 += d * (x - this.mean);
  }

  get std(): number {
    return this.n > 0 ? Math.sqrt(this.m2 / this.n) : 0;
  }

  get missing(): number {
    return this.hist.missing;
  }

  merge(o: NumericProfile): void {
    this.hist.merge(o.hist);
    this.sketch.merge(o.sketch);
    const n = this.n + o.n;
    if (n > 0) {
      const d = o.mean - this.mean;
      this.m2 += o.m2 + (d * d * this.n * o.n) / n;
      this.mean += (d * o.n) / n;
    }
    this.n = n;
  }

  reset(): void {
    this.hist.reset();
    this.sketch.reset();
    this.n = 0;
    this.mean = 0;
    this.m2 = 0;
  }
}

export class CategoricalProfile {
  readonly type = 'categorical' as const;
  readonly counts: CategoryCounts;

  constructor(counts = new CategoryCounts()) {
    this.counts = counts;
  }

  add(x: number): void {
    this.counts.add(x);
  }

  get n(): number {
    return this.counts.total;
  }

  get missing(): number {
    return this.counts.missing;
  }

  merge(o: CategoricalProfile): void {
    this.counts.merge(o.counts);
  }

  reset(): void {
    this.counts.reset();
  }
}

export type FeatureProfile = NumericProfile | CategoricalProfile;

export type EncodedFeature =
  | { name: string; type: 'numeric'; n: number; mean: number; m2: number; hist: EncodedHistogram; sketch: EncodedKll }
  | { name: string; type: 'categorical'; counts: EncodedCategories };

export interface EncodedProfile {
  format: 'edge-drift-profile/1';
  /** Observations (rows) added. */
  rows: number;
  features: EncodedFeature[];
}

export interface ProfileLayout {
  names: string[];
  /** Per feature: histogram edges for numeric features, null for categorical ones. */
  edges: (ArrayLike<number> | null)[];
}

export class Profile {
  readonly names: string[];
  readonly features: FeatureProfile[];
  rows = 0;

  constructor(layout: ProfileLayout, sketchK = 200) {
    if (layout.names.length !== layout.edges.length) throw new RangeError('profile layout: one edges entry per name');
    this.names = layout.names.slice();
    this.features = layout.edges.map((e, i) => (e ? NumericProfile.empty(e, sketchK, 0x9e3779b9 ^ (i * 0x85ebca6b)) : new CategoricalProfile()));
  }

  /** An empty profile with this one's layout (same names, same histogram edges). */
  emptyLike(sketchK: number): Profile {
    return new Profile(this.layout(), sketchK);
  }

  layout(): ProfileLayout {
    return { names: this.names, edges: this.features.map((f) => (f.type === 'numeric' ? f.hist.edges : null)) };
  }

  /** Adds one observation: row[i] is feature i's value (NaN = missing). */
  add(row: ArrayLike<number>): void {
    const fs = this.features;
    for (let i = 0; i < fs.length; i++) fs[i].add(row[i]);
    this.rows++;
  }

  merge(o: Profile): void {
    if (o.names.length !== this.names.length || o.names.some((n, i) => n !== this.names[i])) {
      throw new RangeError(`cannot merge profiles of different features ([${this.names.join(', ')}] and [${o.names.join(', ')}])`);
    }
    this.features.forEach((f, i) => {
      const g = o.features[i];
      if (f.type !== g.type) throw new RangeError(`feature ${this.names[i]} is ${f.type} in one profile and ${g.type} in the other`);
      (f as NumericProfile).merge(g as NumericProfile);
    });
    this.rows += o.rows;
  }

  reset(): void {
    for (const f of this.features) f.reset();
    this.rows = 0;
  }

  get(name: string): FeatureProfile | undefined {
    const i = this.names.indexOf(name);
    return i < 0 ? undefined : this.features[i];
  }

  encode(): EncodedProfile {
    return {
      format: 'edge-drift-profile/1',
      rows: this.rows,
      features: this.features.map((f, i): EncodedFeature => f.type === 'numeric'
        ? { name: this.names[i], type: 'numeric', n: f.n, mean: f.mean, m2: f.m2, hist: f.hist.encode(), sketch: f.sketch.encode() }
        : { name: this.names[i], type: 'categorical', counts: f.counts.encode() }),
    };
  }

  static decode(e: EncodedProfile, what = 'profile'): Profile {
    if (!e || typeof e !== 'object' || e.format !== 'edge-drift-profile/1' || !Array.isArray(e.features)) {
      throw new TypeError(`${what}: expected an encoded drift profile {format: "edge-drift-profile/1", rows, features: [...]}`);
    }
    const p = new Profile({ names: [], edges: [] });
    (p as { names: string[] }).names = e.features.map((f) => String(f.name));
    (p as { features: FeatureProfile[] }).features = e.features.map((f, i) => {
      const w = `${what}.features[${i}] (${f.name})`;
      if (f.type === 'numeric') {
        const np = new NumericProfile(FixedHistogram.decode(f.hist, `${w}.hist`), KllSketch.decode(f.sketch, `${w}.sketch`));
        np.n = Number(f.n) || 0;
        np.mean = Number(f.mean) || 0;
        np.m2 = Number(f.m2) || 0;
        return np;
      }
      if (f.type === 'categorical') {
        return new CategoricalProfile(CategoryCounts.decode(f.counts, 64, `${w}.counts`));
      }
      throw new TypeError(`${w}: unknown feature type ${JSON.stringify((f as { type?: unknown }).type)}`);
    });
    p.rows = Number(e.rows) || 0;
    return p;
  }
}

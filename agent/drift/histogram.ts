// A fixed-bin histogram: the edges come from the reference, so every window, device and
// fleet histogram of one feature shares them and merges by adding counts (exactly).
import { b64ToF64, f64ToB64 } from './codec.js';

export interface EncodedHistogram {
  edges: string;
  /** [below the first edge, bin 0 .. bin n-1, above the last edge] */
  counts: string;
  missing: number;
}

export class FixedHistogram {
  readonly edges: Float64Array;
  /** counts[0] = below range, counts[1..bins] = bins, counts[bins+1] = above range. */
  readonly counts: Float64Array;
  missing = 0;

  constructor(edges: ArrayLike<number>) {
    if (edges.length < 2) throw new RangeError('a histogram needs at least two edges');
    for (let i = 1; i < edges.length; i++) {
      if (!(edges[i] > edges[i - 1])) throw new RangeError(`histogram edges must increase strictly (edge ${i}: ${edges[i - 1]} then ${edges[i]})`);
    }
    this.edges = Float64Array.from(edges);
    this.counts = new Float64Array(edges.length + 1);
  }

  get bins(): number {
    return this.edges.length - 1;
  }

  /** Values seen, missing ones excluded. */
  get total(): number {
    let s = 0;
    for (let i = 0; i < this.counts.length; i++) s += this.counts[i];
    return s;
  }

  get outOfRange(): number {
    return this.counts[0] + this.counts[this.counts.length - 1];
  }

  add(x: number): void {
    if (x !== x) {
      this.missing++;
      return;
    }
    this.counts[this.slot(x)]++;
  }

  /** Index into counts for x: binary search over the edges (bins are [e_i, e_i+1), the last one closed). */
  slot(x: number): number {
    const e = this.edges;
    const last = e.length - 1;
    if (x < e[0]) return 0;
    if (x > e[last]) return last + 1;
    let lo = 0, hi = last; // e[lo] <= x, find the largest such lo < last
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (e[mid] <= x) lo = mid;
      else hi = mid;
    }
    return lo + 1;
  }

  merge(other: FixedHistogram): void {
    if (!sameEdges(this.edges, other.edges)) throw new RangeError('cannot merge histograms with different edges');
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    this.missing += other.missing;
  }

  reset(): void {
    this.counts.fill(0);
    this.missing = 0;
  }

  clone(): FixedHistogram {
    const h = new FixedHistogram(this.edges);
    h.counts.set(this.counts);
    h.missing = this.missing;
    return h;
  }

  encode(): EncodedHistogram {
    return { edges: f64ToB64(this.edges), counts: f64ToB64(this.counts), missing: this.missing };
  }

  static decode(e: EncodedHistogram, what = 'histogram'): FixedHistogram {
    const h = new FixedHistogram(b64ToF64(e.edges, `${what}.edges`));
    const counts = b64ToF64(e.counts, `${what}.counts`);
    if (counts.length !== h.counts.length) throw new TypeError(`${what}: ${counts.length} counts for ${h.bins} bins (expected ${h.counts.length})`);
    h.counts.set(counts);
    h.missing = Number(e.missing) || 0;
    return h;
  }
}

function sameEdges(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

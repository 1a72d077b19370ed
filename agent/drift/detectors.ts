// Online change detectors for scalar streams (confidence, latency, error rate, feedback
// accuracy): they flag a change between windows, as it happens. Defaults are River's/MOA's.

/**
 * ADWIN (Bifet & Gavaldà 2007): keeps a window of recent values in an exponential histogram
 * and drops its older part whenever the two parts' means differ by more than the Hoeffding-type
 * bound for confidence delta. Memory O(M log W).
 */
export class Adwin {
  readonly delta: number;
  readonly #maxBuckets = 5;
  readonly #clock = 32;
  readonly #minLen = 5;
  // rows[i] holds buckets of 2^i items, oldest first: parallel arrays of totals and variances.
  #totals: number[][] = [[]];
  #vars: number[][] = [[]];
  #width = 0;
  #total = 0;
  #variance = 0;
  #ticks = 0;
  /** Changes detected so far. */
  detections = 0;

  constructor(delta = 0.002) {
    if (!(delta > 0 && delta < 1)) throw new RangeError(`ADWIN delta must be in (0, 1), got ${delta}`);
    this.delta = delta;
  }

  get width(): number {
    return this.#width;
  }

  get mean(): number {
    return this.#width ? this.#total / this.#width : 0;
  }

  /** Adds a value; true when a change was detected (the window was cut). */
  update(x: number): boolean {
    if (x !== x) return false;
    // Insert as a new bucket of size 1.
    if (this.#width > 0) {
      const d = x - this.#total / this.#width;
      this.#variance += (this.#width * d * d) / (this.#width + 1);
    }
    this.#width++;
    this.#total += x;
    this.#totals[0].push(x);
    this.#vars[0].push(0);
    this.#compress();
    if (++this.#ticks % this.#clock !== 0 || this.#width < 2 * this.#minLen) return false;
    let changed = false;
    for (let cut = true; cut && this.#width > 2 * this.#minLen;) {
      cut = false;
      let n0 = 0, s0 = 0;
      // Walk from the oldest bucket; W0 = older part, W1 = the rest.
      outer: for (let i = this.#totals.length - 1; i >= 0; i--) {
        const row = this.#totals[i];
        for (let j = 0; j < row.length; j++) {
          n0 += 2 ** i;
          s0 += row[j];
          const n1 = this.#width - n0;
          if (n1 < this.#minLen) break outer;
          if (n0 < this.#minLen) continue;
          if (this.#cutExpression(n0, n1, s0 / n0, (this.#total - s0) / n1)) {
            cut = changed = true;
            this.#dropOldest();
            break outer;
          }
        }
      }
    }
    if (changed) this.detections++;
    return changed;
  }

  #cutExpression(n0: number, n1: number, u0: number, u1: number): boolean {
    const n = this.#width;
    const v = this.#variance / n;
    const dd = Math.log((2 * Math.log(n)) / this.delta);
    const m = 1 / (n0 - this.#minLen + 1) + 1 / (n1 - this.#minLen + 1);
    const eps = Math.sqrt(2 * m * v * dd) + (2 / 3) * dd * m;
    return Math.abs(u0 - u1) > eps;
  }

  /** Merges the two oldest buckets of any row that holds more than M. */
  #compress(): void {
    for (let i = 0; i < this.#totals.length; i++) {
      const row = this.#totals[i], vrow = this.#vars[i];
      if (row.length <= this.#maxBuckets) break;
      if (i + 1 === this.#totals.length) {
        this.#totals.push([]);
        this.#vars.push([]);
      }
      const size = 2 ** i;
      const t1 = row.shift()!, t2 = row.shift()!;
      const v1 = vrow.shift()!, v2 = vrow.shift()!;
      const d = t1 / size - t2 / size;
      this.#totals[i + 1].push(t1 + t2);
      this.#vars[i + 1].push(v1 + v2 + (size * size * d * d) / (2 * size));
    }
  }

  #dropOldest(): void {
    for (let i = this.#totals.length - 1; i >= 0; i--) {
      if (this.#totals[i].length === 0) continue;
      const size = 2 ** i;
      const t = this.#totals[i].shift()!;
      const v = this.#vars[i].shift()!;
      this.#width -= size;
      this.#total -= t;
      const d = t / size - (this.#width ? this.#total / this.#width : 0);
      this.#variance -= v + (size * this.#width * d * d) / (size + this.#width || 1);
      if (this.#variance < 0 || this.#width === 0) this.#variance = Math.max(0, this.#variance);
      while (this.#totals.length > 1 && this.#totals[this.#totals.length - 1].length === 0) {
        this.#totals.pop();
        this.#vars.pop();
      }
      return;
    }
  }
}

/**
 * Page-Hinkley: a cumulative sum of deviations from the running mean (minus a tolerance
 * delta); a change when it rises (or falls) more than `threshold` from its extreme. It resets
 * after each detection.
 */
export class PageHinkley {
  readonly delta: number;
  readonly threshold: number;
  readonly minSamples: number;
  readonly alpha: number;
  #n = 0;
  #mean = 0;
  #up = 0;
  #down = 0;
  #minUp = Infinity;
  #maxDown = -Infinity;
  detections = 0;

  constructor(opts: { delta?: number; threshold?: number; minSamples?: number; alpha?: number } = {}) {
    this.delta = opts.delta ?? 0.005;
    this.threshold = opts.threshold ?? 50;
    this.minSamples = opts.minSamples ?? 30;
    this.alpha = opts.alpha ?? 1 - 1e-4;
  }

  /** Adds a value; 'up' or 'down' when the mean changed in that direction. */
  update(x: number): 'up' | 'down' | undefined {
    if (x !== x) return undefined;
    this.#n++;
    this.#mean += (x - this.#mean) / this.#n;
    const dev = x - this.#mean;
    // Two sums, as River: one tolerates upward noise by delta, the other downward.
    this.#up = this.alpha * this.#up + dev - this.delta;
    this.#down = this.alpha * this.#down + dev + this.delta;
    if (this.#up < this.#minUp) this.#minUp = this.#up;
    if (this.#down > this.#maxDown) this.#maxDown = this.#down;
    if (this.#n < this.minSamples) return undefined;
    let dir: 'up' | 'down' | undefined;
    if (this.#up - this.#minUp > this.threshold) dir = 'up';
    else if (this.#maxDown - this.#down > this.threshold) dir = 'down';
    if (dir) {
      this.detections++;
      this.reset();
    }
    return dir;
  }

  reset(): void {
    this.#n = 0;
    this.#mean = 0;
    this.#up = 0;
    this.#down = 0;
    this.#minUp = Infinity;
    this.#maxDown = -Infinity;
  }
}

// Category frequencies with a cap on distinct categories, so a feature that turns out to be
// high-cardinality cannot grow memory without bound: the rest lands in `other`.

export interface EncodedCategories {
  /** category code -> count */
  counts: Record<string, number>;
  other: number;
  missing: number;
}

export class CategoryCounts {
  readonly maxCategories: number;
  readonly counts = new Map<number, number>();
  other = 0;
  missing = 0;

  constructor(maxCategories = 64) {
    this.maxCategories = maxCategories;
  }

  add(code: number): void {
    if (code !== code) {
      this.missing++;
      return;
    }
    const c = this.counts.get(code);
    if (c !== undefined) this.counts.set(code, c + 1);
    else if (this.counts.size < this.maxCategories) this.counts.set(code, 1);
    else this.other++;
  }

  get total(): number {
    let s = this.other;
    for (const c of this.counts.values()) s += c;
    return s;
  }

  merge(o: CategoryCounts): void {
    for (const [k, c] of o.counts) {
      const mine = this.counts.get(k);
      if (mine !== undefined) this.counts.set(k, mine + c);
      else if (this.counts.size < this.maxCategories) this.counts.set(k, c);
      else this.other += c;
    }
    this.other += o.other;
    this.missing += o.missing;
  }

  reset(): void {
    this.counts.clear();
    this.other = 0;
    this.missing = 0;
  }

  clone(): CategoryCounts {
    const c = new CategoryCounts(this.maxCategories);
    c.merge(this);
    return c;
  }

  encode(): EncodedCategories {
    return { counts: Object.fromEntries([...this.counts].sort((a, b) => a[0] - b[0])), other: this.other, missing: this.missing };
  }

  static decode(e: EncodedCategories, maxCategories = 64, what = 'categories'): CategoryCounts {
    if (!e || typeof e !== 'object' || typeof e.counts !== 'object') throw new TypeError(`${what}: expected {counts: {category: count}, other, missing}`);
    const c = new CategoryCounts(Math.max(maxCategories, Object.keys(e.counts).length));
    for (const [k, v] of Object.entries(e.counts)) {
      const code = Number(k), n = Number(v);
      if (!Number.isFinite(code) || !(n >= 0)) throw new TypeError(`${what}: category ${k} has count ${String(v)}; expected a numeric code and a count >= 0`);
      c.counts.set(code, n);
    }
    c.other = Number(e.other) || 0;
    c.missing = Number(e.missing) || 0;
    return c;
  }
}

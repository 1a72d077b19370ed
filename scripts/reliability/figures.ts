// One line of figures per scenario, and the closing table of `npm run soak`.

export interface Figures {
  scenario: string;
  /** What load was held, in words with its rate ("200 rec/s + 50 inf/s"). */
  load: string;
  faults: number;
  accepted: number;
  delivered: number;
  /** Evicted by policy (budget, age, ttl, a full disk): counted, not lost. */
  evicted: number;
  /** Set aside as poison (too large for any message, or refused by the broker); undefined where not measured. */
  quarantined?: number;
  /** accepted - delivered - evicted - quarantined - still queued: must be 0. */
  lost: number;
  duplicates: number;
  peakRssMb: number;
  p99Ms?: number;
  notes?: string;
}

const COLUMNS: [keyof Figures, string][] = [
  ['scenario', 'scenario'], ['load', 'load held'], ['faults', 'faults'], ['accepted', 'accepted'],
  ['delivered', 'delivered'], ['evicted', 'evicted'], ['quarantined', 'quar.'], ['lost', 'lost'], ['duplicates', 'dups'],
  ['peakRssMb', 'peak RSS MB'], ['p99Ms', 'p99 ms'], ['notes', 'notes'],
];

const cell = (v: unknown): string => (v === undefined ? '-' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : String(v));

export function figuresLine(f: Figures): string {
  return COLUMNS.map(([k, label]) => `${label}=${cell(f[k])}`).join(' ');
}

export function figuresTable(rows: Figures[]): string {
  const cells = rows.map((r) => COLUMNS.map(([k]) => cell(r[k])));
  const widths = COLUMNS.map(([, label], i) => Math.max(label.length, ...cells.map((c) => c[i].length)));
  const line = (cs: string[]): string => cs.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(COLUMNS.map(([, l]) => l)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

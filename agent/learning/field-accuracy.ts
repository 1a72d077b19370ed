// Field accuracy per model version on the device (issue 21, item 7; docs/learning.md): when
// feedback labels an answer, the version that answered it is scored (top-1 right or wrong, per
// batch row), and so is the shadow candidate's prediction for the same answer. The shadow
// pairs are the fair comparison: both versions on the same labelled rows. The tallies go with
// the model's entry in models/reported, where the controller's rollout gate reads them
// (controller/rollout/plan.ts, minFieldGain and minFieldLabels). They live in memory: an agent
// restart starts counting again.

import type { FieldPair, FieldReport, FieldTally } from '../../protocol/field-accuracy.js';

export type { FieldPair, FieldReport, FieldTally };

/** What FieldExamples tells about a labelled answer (a narrow port; FieldAccuracy implements it). */
export interface FieldScores {
  /** `version` answered `rows` labelled rows, `correct` of them right. */
  answered(model: string, version: string, rows: number, correct: number): void;
  /** The shadow candidate's prediction for the same labelled rows. */
  paired(model: string, primary: string, shadow: string, rows: number, primaryCorrect: number, shadowCorrect: number): void;
}

/** Versions and pairs kept per model at most: the oldest go first (a long-lived agent sees many versions). */
const MAX_ENTRIES = 16;
/** Labels can come in bursts: the report is published at most this often (ms). */
const REPORT_EVERY_MS = 1000;

export class FieldAccuracy implements FieldScores {
  readonly #models = new Map<string, { versions: Map<string, FieldTally>; pairs: Map<string, FieldPair> }>();
  readonly #listeners: (() => void)[] = [];
  readonly #reportEveryMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { reportEveryMs?: number } = {}) {
    this.#reportEveryMs = opts.reportEveryMs ?? REPORT_EVERY_MS;
  }

  answered(model: string, version: string, rows: number, correct: number): void {
    const m = this.#model(model);
    const t = bounded(m.versions, version, () => ({ labelled: 0, correct: 0 }));
    t.labelled += rows;
    t.correct += correct;
    this.#changed();
  }

  paired(model: string, primary: string, shadow: string, rows: number, primaryCorrect: number, shadowCorrect: number): void {
    const m = this.#model(model);
    const p = bounded(m.pairs, `${primary}\u0000${shadow}`, () => ({ primary, shadow, labelled: 0, primaryCorrect: 0, shadowCorrect: 0 }));
    p.labelled += rows;
    p.primaryCorrect += primaryCorrect;
    p.shadowCorrect += shadowCorrect;
    this.#changed();
  }

  /** The model's tallies, or undefined before its first label. */
  report(model: string): FieldReport | undefined {
    const m = this.#models.get(model);
    if (!m) return undefined;
    return {
      versions: Object.fromEntries([...m.versions].map(([v, t]) => [v, { ...t }])),
      pairs: [...m.pairs.values()].map((p) => ({ ...p })),
    };
  }

  /** Called (at most every reportEveryMs) after new labels. */
  onChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #model(model: string): { versions: Map<string, FieldTally>; pairs: Map<string, FieldPair> } {
    let m = this.#models.get(model);
    if (!m) this.#models.set(model, (m = { versions: new Map(), pairs: new Map() }));
    return m;
  }

  #changed(): void {
    if (this.#timer || !this.#listeners.length) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      for (const fn of this.#listeners) fn();
    }, this.#reportEveryMs);
    this.#timer.unref();
  }
}

function bounded<V>(map: Map<string, V>, key: string, make: () => V): V {
  let v = map.get(key);
  if (v) return v;
  map.set(key, (v = make()));
  while (map.size > MAX_ENTRIES) map.delete(map.keys().next().value!);
  return v;
}

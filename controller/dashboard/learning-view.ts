// The dashboard's learning table (issue 21 item 2): per model version, how many field examples
// (stream "examples") and labels (stream "feedback") arrived, and the labels per class. The
// store counts (ControllerStore.learningCounts), so the examples' inputs never leave the database.
import type { ControllerStore } from '../store/types.js';

export interface LearningRow {
  model: string;
  version: string;
  examples: number;
  labels: number;
  /** Labels per class (index or name as sent; a multi-row label counts each row). */
  perClass: Record<string, number>;
}

export async function learningView(store: ControllerStore): Promise<LearningRow[]> {
  const out = new Map<string, LearningRow>();
  for (const r of await store.learningCounts()) {
    const key = `${r.model}@${r.version}`;
    const row = out.get(key) ?? { model: r.model, version: r.version, examples: 0, labels: 0, perClass: {} };
    out.set(key, row);
    if (r.stream === 'examples') {
      row.examples += r.records;
      continue;
    }
    row.labels += r.records;
    for (const c of Array.isArray(r.label) ? r.label : [r.label]) {
      if (c !== null && c !== undefined) row.perClass[String(c)] = (row.perClass[String(c)] ?? 0) + r.records;
    }
  }
  return [...out.values()].sort((a, b) => (a.model === b.model ? (a.version < b.version ? -1 : 1) : a.model < b.model ? -1 : 1));
}

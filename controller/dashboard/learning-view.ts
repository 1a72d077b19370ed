// The dashboard's learning table (issue 21 item 2): per model version, how many field examples
// (stream "examples") and labels (stream "feedback") arrived, and the labels per class. Read
// with SQLite's JSON functions so the examples' inputs never leave the database.
import type { FleetStore } from '../store.js';

export interface LearningRow {
  model: string;
  version: string;
  examples: number;
  labels: number;
  /** Labels per class (index or name as sent; a multi-row label counts each row). */
  perClass: Record<string, number>;
}

export function learningView(store: FleetStore): LearningRow[] {
  const rows = store.db.prepare(`SELECT stream, json_extract(payload_json, '$.model') AS model, json_extract(payload_json, '$.version') AS version,
      CASE WHEN stream = 'feedback' THEN json_extract(payload_json, '$.label') END AS label, COUNT(*) AS n
    FROM telemetry WHERE stream IN ('examples', 'feedback') AND json_valid(payload_json)
    GROUP BY stream, model, version, label`).all() as { stream: string; model: unknown; version: unknown; label: unknown; n: number }[];
  const out = new Map<string, LearningRow>();
  for (const r of rows) {
    if (typeof r.model !== 'string' || typeof r.version !== 'string') continue;
    const key = `${r.model}@${r.version}`;
    const row = out.get(key) ?? { model: r.model, version: r.version, examples: 0, labels: 0, perClass: {} };
    out.set(key, row);
    if (r.stream === 'examples') {
      row.examples += r.n;
      continue;
    }
    row.labels += r.n;
    let classes: unknown[] = [r.label];
    if (typeof r.label === 'string' && r.label.startsWith('[')) {
      try {
        classes = JSON.parse(r.label) as unknown[];
      } catch {
        // a class name that starts with "[": counted as it is
      }
    }
    for (const c of classes) if (c !== null && c !== undefined) row.perClass[String(c)] = (row.perClass[String(c)] ?? 0) + r.n;
  }
  return [...out.values()].sort((a, b) => (a.model === b.model ? (a.version < b.version ? -1 : 1) : a.model < b.model ? -1 : 1));
}

// The dashboard's two aggregate reads of the telemetry tables, counted by the database so no
// record leaves it: records stored per stream and minute (the volume chart), and the learning
// table's examples and labels per model version. One query per store.
import type Database from 'better-sqlite3';
import type pg from 'pg';

/** Records stored in one minute (minute = floor(received_at / 60000)) of one stream. */
export interface TelemetryVolumeRow {
  stream: string;
  minute: number;
  records: number;
}

/**
 * How many records of stream "examples", or of stream "feedback" with this label, arrived for a
 * model version. `label` is the record's label as JSON gave it (a class index or name, an
 * array of them, or null); examples have none. Records whose model or version is not a string
 * are not counted.
 */
export interface LearningCountRow {
  stream: 'examples' | 'feedback';
  model: string;
  version: string;
  label: unknown;
  records: number;
}

export function sqliteTelemetryVolume(db: Database.Database, since: number): TelemetryVolumeRow[] {
  return db.prepare(`SELECT stream, CAST(received_at / 60000 AS INTEGER) AS minute, SUM(stored) AS records
    FROM batches WHERE received_at >= ? GROUP BY stream, minute ORDER BY minute, stream`).all(since) as TelemetryVolumeRow[];
}

export async function pgTelemetryVolume(pool: pg.Pool, since: number): Promise<TelemetryVolumeRow[]> {
  const res = await pool.query<TelemetryVolumeRow>(`SELECT stream, (received_at / 60000)::bigint AS minute, SUM(stored)::int AS records
    FROM batches WHERE received_at >= $1 GROUP BY stream, minute ORDER BY minute, stream`, [since]);
  return res.rows;
}

export function sqliteLearningCounts(db: Database.Database): LearningCountRow[] {
  // `->` gives the label as JSON text (a string label quoted), so an array and a name that
  // looks like one stay apart.
  const rows = db.prepare(`SELECT stream, json_extract(payload_json, '$.model') AS model, json_extract(payload_json, '$.version') AS version,
      CASE WHEN stream = 'feedback' THEN payload_json -> '$.label' END AS label, COUNT(*) AS records
    FROM telemetry WHERE stream IN ('examples', 'feedback')
      AND CASE WHEN json_valid(payload_json) THEN json_type(payload_json, '$.model') = 'text' AND json_type(payload_json, '$.version') = 'text' END
    GROUP BY stream, model, version, label ORDER BY model, version, stream, label`).all() as (Omit<LearningCountRow, 'label'> & { label: string | null })[];
  return rows.map((r) => ({ ...r, label: r.label === null ? null : JSON.parse(r.label) }));
}

export async function pgLearningCounts(pool: pg.Pool): Promise<LearningCountRow[]> {
  // payload_json is JSON (not JSONB): JSONB for the grouping, which JSON has no equality for.
  const res = await pool.query<LearningCountRow>(`SELECT stream, p ->> 'model' AS model, p ->> 'version' AS version,
      CASE WHEN stream = 'feedback' THEN p -> 'label' END AS label, COUNT(*)::int AS records
    FROM (SELECT stream, payload_json::jsonb AS p FROM telemetry WHERE stream IN ('examples', 'feedback')) t
    WHERE jsonb_typeof(p -> 'model') = 'string' AND jsonb_typeof(p -> 'version') = 'string'
    GROUP BY stream, model, version, label ORDER BY model, version, stream, label`);
  return res.rows.map((r) => ({ ...r, label: r.label ?? null }));
}

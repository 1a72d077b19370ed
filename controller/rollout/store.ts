// Rollout plans and their device assignments in the controller's SQLite database, so a
// plan survives a controller restart.
import type Database from 'better-sqlite3';
import type { Gates, Rollout, RolloutState } from './plan.js';

export interface Assignment {
  deviceId: string;
  stage: number;
  assignedAt: number;
  /** The version the device ran before (for its rollback), when known. */
  previousVersion?: string;
  /** The last thing the device reported about this rollout's version (kept after it moves on). */
  outcome?: { state: string; reason?: string; at: number };
}

export class RolloutStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS rollouts (
        id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        previous_version TEXT,
        grp TEXT NOT NULL,
        stages TEXT NOT NULL,
        gates TEXT NOT NULL,
        stage_index INTEGER NOT NULL,
        stage_started_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        assigned_at INTEGER NOT NULL,
        previous_version TEXT,
        outcome_state TEXT,
        outcome_reason TEXT,
        outcome_at INTEGER,
        PRIMARY KEY (rollout_id, device_id)
      );
      CREATE TABLE IF NOT EXISTS rollout_events (
        rollout_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT
      );`);
    // Databases made before the outcome columns: add them.
    const cols = new Set((db.prepare('PRAGMA table_info(rollout_devices)').all() as { name: string }[]).map((c) => c.name));
    for (const [c, type] of [['outcome_state', 'TEXT'], ['outcome_reason', 'TEXT'], ['outcome_at', 'INTEGER']]) {
      if (!cols.has(c!)) db.exec(`ALTER TABLE rollout_devices ADD COLUMN ${c} ${type}`);
    }
  }

  create(r: Rollout): void {
    this.#db.prepare(`INSERT INTO rollouts (id, model, version, previous_version, grp, stages, gates, stage_index, stage_started_at, state, reason, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      r.id, r.model, r.version, r.previousVersion ?? null, r.group, JSON.stringify(r.stages), JSON.stringify(r.gates),
      r.stageIndex, r.stageStartedAt, r.state, r.reason ?? null, r.createdAt);
    this.event(r.id, 'created', { model: r.model, version: r.version, group: r.group, stages: r.stages, gates: r.gates });
  }

  get(id: string): Rollout | undefined {
    const row = this.#db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow(row);
  }

  list(): Rollout[] {
    return (this.#db.prepare('SELECT * FROM rollouts ORDER BY created_at DESC').all() as Row[]).map(fromRow);
  }

  running(): Rollout[] {
    return (this.#db.prepare("SELECT * FROM rollouts WHERE state = 'running' ORDER BY created_at").all() as Row[]).map(fromRow);
  }

  setStage(id: string, stageIndex: number, at: number): void {
    this.#db.prepare('UPDATE rollouts SET stage_index = ?, stage_started_at = ? WHERE id = ?').run(stageIndex, at, id);
    this.event(id, 'stage', { stage: stageIndex });
  }

  setState(id: string, state: RolloutState, reason?: string, evidence?: unknown): void {
    this.#db.prepare('UPDATE rollouts SET state = ?, reason = ? WHERE id = ?').run(state, reason ?? null, id);
    this.event(id, state, { reason, evidence });
  }

  assign(id: string, a: Assignment): void {
    this.#db.prepare('INSERT OR IGNORE INTO rollout_devices (rollout_id, device_id, stage, assigned_at, previous_version) VALUES (?, ?, ?, ?, ?)')
      .run(id, a.deviceId, a.stage, a.assignedAt, a.previousVersion ?? null);
  }

  assignments(id: string): Assignment[] {
    return (this.#db.prepare('SELECT device_id, stage, assigned_at, previous_version, outcome_state, outcome_reason, outcome_at FROM rollout_devices WHERE rollout_id = ? ORDER BY assigned_at, device_id').all(id) as
      { device_id: string; stage: number; assigned_at: number; previous_version: string | null; outcome_state: string | null; outcome_reason: string | null; outcome_at: number | null }[])
      .map((r) => ({
        deviceId: r.device_id, stage: r.stage, assignedAt: r.assigned_at, previousVersion: r.previous_version ?? undefined,
        ...(r.outcome_state ? { outcome: { state: r.outcome_state, reason: r.outcome_reason ?? undefined, at: r.outcome_at ?? 0 } } : {}),
      }));
  }

  /** Remembers what a device reported about the rollout's own version. */
  recordOutcome(id: string, deviceId: string, outcome: { state: string; reason?: string; at: number }): void {
    this.#db.prepare('UPDATE rollout_devices SET outcome_state = ?, outcome_reason = ?, outcome_at = ? WHERE rollout_id = ? AND device_id = ?')
      .run(outcome.state, outcome.reason ?? null, outcome.at, id, deviceId);
  }

  event(id: string, kind: string, detail: unknown): void {
    this.#db.prepare('INSERT INTO rollout_events (rollout_id, at, kind, detail) VALUES (?, ?, ?, ?)').run(id, Date.now(), kind, JSON.stringify(detail ?? null));
  }

  events(id: string): { at: number; kind: string; detail: unknown }[] {
    return (this.#db.prepare('SELECT at, kind, detail FROM rollout_events WHERE rollout_id = ? ORDER BY rowid').all(id) as { at: number; kind: string; detail: string }[])
      .map((e) => ({ at: e.at, kind: e.kind, detail: JSON.parse(e.detail) as unknown }));
  }
}

interface Row {
  id: string; model: string; version: string; previous_version: string | null; grp: string; stages: string; gates: string;
  stage_index: number; stage_started_at: number; state: RolloutState; reason: string | null; created_at: number;
}

function fromRow(r: Row): Rollout {
  return {
    id: r.id, model: r.model, version: r.version, previousVersion: r.previous_version ?? undefined, group: r.grp,
    stages: JSON.parse(r.stages) as number[], gates: JSON.parse(r.gates) as Gates, stageIndex: r.stage_index,
    stageStartedAt: r.stage_started_at, state: r.state, reason: r.reason ?? undefined, createdAt: r.created_at,
  };
}

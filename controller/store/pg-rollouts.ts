// Rollout plans on PostgreSQL, with a lease per rollout: the replica holding an unexpired
// lease is the one that carries the rollout's steps out; a replica that dies stops renewing
// and another takes the rollout over once its lease expires.
import type pg from 'pg';
import type { Gates, Rollout, RolloutState } from '../rollout/plan.js';
import type { Assignment } from '../rollout/store.js';
import type { RolloutRecords } from './types.js';

interface Row {
  id: string; model: string; version: string; previous_version: string | null; grp: string; stages: number[]; gates: Gates;
  stage_index: number; stage_started_at: number; state: RolloutState; reason: string | null; created_at: number;
}

function fromRow(r: Row): Rollout {
  return {
    id: r.id, model: r.model, version: r.version, previousVersion: r.previous_version ?? undefined, group: r.grp,
    stages: r.stages, gates: r.gates, stageIndex: r.stage_index, stageStartedAt: r.stage_started_at, state: r.state,
    reason: r.reason ?? undefined, createdAt: r.created_at,
  };
}

export function pgRollouts(pool: pg.Pool): RolloutRecords {
  const event = async (id: string, kind: string, detail: unknown): Promise<void> => {
    await pool.query('INSERT INTO rollout_events (rollout_id, at, kind, detail) VALUES ($1, $2, $3, $4)', [id, Date.now(), kind, JSON.stringify(detail ?? null)]);
  };
  const select = async (where: string, args: unknown[] = []): Promise<Rollout[]> =>
    (await pool.query<Row>(`SELECT * FROM rollouts ${where}`, args)).rows.map(fromRow);
  return {
    async create(r) {
      await pool.query(`INSERT INTO rollouts (id, model, version, previous_version, grp, stages, gates, stage_index, stage_started_at, state, reason, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
        r.id, r.model, r.version, r.previousVersion ?? null, r.group, JSON.stringify(r.stages), JSON.stringify(r.gates),
        r.stageIndex, r.stageStartedAt, r.state, r.reason ?? null, r.createdAt]);
      await event(r.id, 'created', { model: r.model, version: r.version, group: r.group, stages: r.stages, gates: r.gates });
    },
    get: async (id) => (await select('WHERE id = $1', [id]))[0],
    list: () => select('ORDER BY created_at DESC'),
    running: () => select("WHERE state = 'running' ORDER BY created_at"),
    async setStage(id, stageIndex, at) {
      await pool.query('UPDATE rollouts SET stage_index = $1, stage_started_at = $2 WHERE id = $3', [stageIndex, at, id]);
      await event(id, 'stage', { stage: stageIndex });
    },
    async setState(id, state, reason, evidence) {
      await pool.query('UPDATE rollouts SET state = $1, reason = $2 WHERE id = $3', [state, reason ?? null, id]);
      await event(id, state, { reason, evidence });
    },
    async assign(id, a) {
      await pool.query(`INSERT INTO rollout_devices (rollout_id, device_id, stage, assigned_at, previous_version) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT DO NOTHING`, [id, a.deviceId, a.stage, a.assignedAt, a.previousVersion ?? null]);
    },
    async assignments(id) {
      const res = await pool.query<{ device_id: string; stage: number; assigned_at: number; previous_version: string | null; outcome_state: string | null; outcome_reason: string | null; outcome_at: number | null }>(
        'SELECT * FROM rollout_devices WHERE rollout_id = $1 ORDER BY assigned_at, device_id', [id]);
      return res.rows.map((r): Assignment => ({
        deviceId: r.device_id, stage: r.stage, assignedAt: r.assigned_at, previousVersion: r.previous_version ?? undefined,
        ...(r.outcome_state ? { outcome: { state: r.outcome_state, reason: r.outcome_reason ?? undefined, at: r.outcome_at ?? 0 } } : {}),
      }));
    },
    async recordOutcome(id, deviceId, o) {
      await pool.query('UPDATE rollout_devices SET outcome_state = $1, outcome_reason = $2, outcome_at = $3 WHERE rollout_id = $4 AND device_id = $5',
        [o.state, o.reason ?? null, o.at, id, deviceId]);
    },
    event,
    async events(id) {
      const res = await pool.query<{ at: number; kind: string; detail: unknown }>('SELECT at, kind, detail FROM rollout_events WHERE rollout_id = $1 ORDER BY id', [id]);
      return res.rows.map((e) => ({ at: e.at, kind: e.kind, detail: e.detail }));
    },
    async lease(id, owner, ttlMs) {
      const now = Date.now();
      const res = await pool.query(`INSERT INTO rollout_leases (rollout_id, owner, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (rollout_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE rollout_leases.owner = excluded.owner OR rollout_leases.expires_at < $4`, [id, owner, now + ttlMs, now]);
      return (res.rowCount ?? 0) > 0;
    },
  };
}

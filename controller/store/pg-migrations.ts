// The controller's PostgreSQL schema as numbered migrations. Each runs once, in its own
// transaction, recorded in schema_migrations; replicas starting together serialise on an
// advisory lock, so a migration is never applied twice.
import type pg from 'pg';
import { inTransaction } from './pg-transaction.js';

/** Key of the advisory lock held while migrating (any constant; "edge" in ASCII). */
const MIGRATION_LOCK = 0x65646765;

export const MIGRATIONS: readonly string[] = [
  // 1: devices, their models (for the dashboard's filters and counts), telemetry by day.
  `CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    status_json JSONB,
    groups TEXT[] NOT NULL DEFAULT '{}',
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    status_at BIGINT,
    reported_json JSONB,
    reported_at BIGINT
  );
  CREATE INDEX devices_state ON devices (state, device_id);
  CREATE INDEX devices_last_seen ON devices (last_seen, device_id);
  CREATE INDEX devices_groups ON devices USING GIN (groups);
  CREATE TABLE device_models (
    device_id TEXT NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (device_id, model)
  );
  CREATE INDEX device_models_version ON device_models (model, version, device_id);
  -- Partitioned by the record's own time (ts, ms): a re-sent record carries its ts, so its
  -- duplicate lands in the same partition and the primary key finds it. Records whose clock
  -- is outside the days made ahead go to the default partition.
  CREATE TABLE telemetry (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    payload_json JSON NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, stream, seq, ts)
  ) PARTITION BY RANGE (ts);
  CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT;
  CREATE TABLE batches (
    id BIGSERIAL PRIMARY KEY,
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    records INTEGER NOT NULL,
    stored INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    received_at BIGINT NOT NULL,
    replica TEXT NOT NULL
  );
  CREATE INDEX batches_device ON batches (device_id, stream);
  CREATE TABLE rejected (
    id BIGSERIAL PRIMARY KEY,
    device_id TEXT,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    received_at BIGINT NOT NULL
  );
  CREATE TABLE drift (
    id BIGSERIAL PRIMARY KEY,
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    report_json JSON NOT NULL,
    UNIQUE (device_id, seq)
  );
  CREATE INDEX drift_ts ON drift (ts DESC, id DESC);`,
  // 2: commands, artifacts and their chunks, desired state.
  `CREATE TABLE commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    name TEXT,
    args_json JSON,
    sent_at BIGINT,
    ok BOOLEAN,
    reply_json JSON,
    replied_at BIGINT
  );
  CREATE TABLE artifacts (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    size BIGINT NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunks_json JSON NOT NULL,
    signature TEXT,
    published_at BIGINT NOT NULL,
    UNIQUE (name, version)
  );
  CREATE TABLE chunks (
    sha256 TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (sha256, idx)
  );
  CREATE TABLE desired (
    target TEXT PRIMARY KEY,
    doc_json JSON NOT NULL,
    updated_at BIGINT NOT NULL
  );`,
  // 3: rollouts, their devices and events, and the lease that makes one replica drive each.
  `CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    previous_version TEXT,
    grp TEXT NOT NULL,
    stages JSON NOT NULL,
    gates JSON NOT NULL,
    stage_index INTEGER NOT NULL,
    stage_started_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    device_id TEXT NOT NULL,
    stage INTEGER NOT NULL,
    assigned_at BIGINT NOT NULL,
    previous_version TEXT,
    outcome_state TEXT,
    outcome_reason TEXT,
    outcome_at BIGINT,
    PRIMARY KEY (rollout_id, device_id)
  );
  CREATE TABLE rollout_events (
    id BIGSERIAL PRIMARY KEY,
    rollout_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail JSON
  );
  CREATE INDEX rollout_events_rollout ON rollout_events (rollout_id, id);
  CREATE TABLE rollout_leases (
    rollout_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
  );`,
  // 4: each reported model's state, so counts and filters take only the versions a device
  // serves (active, probation, committed), as the SQLite store does (controller/device-query.ts).
  `ALTER TABLE device_models ADD COLUMN state TEXT NOT NULL DEFAULT '';
  CREATE INDEX device_models_state ON device_models (model, version, state, device_id);`,
];

/** Applies the migrations this database has not had; returns the versions applied now. */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
    const have = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const [i, sql] of MIGRATIONS.entries()) {
      const version = i + 1;
      if (have.has(version)) continue;
      await c.query(sql);
      await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      applied.push(version);
    }
    return applied;
  });
}

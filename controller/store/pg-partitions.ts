// Telemetry partitions by day (UTC, on the record's ts in ms): made ahead of time, and dropped
// whole once older than the retention, which is far cheaper than deleting rows.
import type pg from 'pg';
import { inTransaction } from './pg-transaction.js';

const DAY_MS = 86_400_000;

/** telemetry_pYYYYMMDD for the UTC day that starts at dayStart. */
export function partitionName(dayStart: number): string {
  return `telemetry_p${new Date(dayStart).toISOString().slice(0, 10).replace(/-/g, '')}`;
}

function dayStartOf(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** Key of the advisory lock held while making partitions (replicas starting together). */
const PARTITION_LOCK = 0x65646766;

/** Makes the partitions from `daysBack` days before `now` to `daysAhead` after (those missing). */
export async function ensurePartitions(pool: pg.Pool, now = Date.now(), daysBack = 1, daysAhead = 3): Promise<string[]> {
  const made: string[] = [];
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
    const existing = new Set(await partitions(c));
    for (let d = -daysBack; d <= daysAhead; d++) {
      const start = dayStartOf(now) + d * DAY_MS;
      const name = partitionName(start);
      if (existing.has(name)) continue;
      // A day whose rows already went to the default partition cannot be attached: such a day
      // (a device clock far off) keeps its rows in the default partition.
      await c.query('SAVEPOINT day');
      try {
        await c.query(`CREATE TABLE ${name} PARTITION OF telemetry FOR VALUES FROM (${start}) TO (${start + DAY_MS})`);
        made.push(name);
      } catch (err) {
        await c.query('ROLLBACK TO SAVEPOINT day');
        if (!/default partition/.test((err as Error).message)) throw err;
      }
    }
    return made;
  });
}

/** The day partitions of telemetry, oldest first. */
export async function partitions(pool: pg.Pool | pg.PoolClient): Promise<string[]> {
  const res = await pool.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname = 'telemetry' AND c.relname LIKE 'telemetry_p%' ORDER BY c.relname`);
  return res.rows.map((r) => r.name);
}

/** Drops the day partitions that end at or before `before` (ms); returns their names. */
export async function dropPartitionsBefore(pool: pg.Pool, before: number): Promise<string[]> {
  const dropped: string[] = [];
  for (const name of await partitions(pool)) {
    const day = /^telemetry_p(\d{4})(\d{2})(\d{2})$/.exec(name);
    if (!day) continue;
    const end = Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3])) + DAY_MS;
    if (end > before) continue;
    await pool.query(`DROP TABLE IF EXISTS ${name}`);
    dropped.push(name);
  }
  return dropped;
}

// The controller as a process, for the scale bench and the 2,000-device test: `edge-fleet
// serve` started from dist/ with --stats (RSS, event-loop lag and counters as JSON lines on
// stdout), and its database read from outside (SQLite opened read-only, PostgreSQL through
// `pg`), never through the controller's own store code, so either store can sit behind it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor, WaitAbort } from '../test/helpers/wait.js';

interface Stats { t: number; rssMb: number; lagP99Ms: number; lagMaxMs: number; [k: string]: number }

export interface ControllerProc {
  proc: ChildProcess;
  /** The latest value of a counter of this process (its last stats line); summed over restarts. */
  sumCounter(name: string): number;
  /** Starts a window for sinceMark(). */
  mark(): void;
  /** The worst lag p99, lag max and RSS of the stats lines since mark(). */
  sinceMark(): { lagP99: number; lagMax: number; rssMb: number };
  output(): string;
  /** When this replica logged that it took over a dead replica's session (ms epoch), 0 = not yet. */
  tookOverAt(): number;
  kill(): void;
  stop(): Promise<void>;
}

export interface ControllerProcOptions {
  broker: string;
  db: string;
  id: string;
  rollouts?: boolean;
  share?: string;
  statsMs?: number;
  /** Run controller/cli.ts through tsx (tests: no build needed) instead of dist/. */
  fromSource?: boolean;
}

export async function startControllerProcess(root: string, o: ControllerProcOptions): Promise<ControllerProc> {
  const entry = o.fromSource ? ['--import', 'tsx', path.join(root, 'controller/cli.ts')] : [path.join(root, 'dist/controller/cli.js')];
  const args = [...entry, 'serve', '--broker', o.broker, '--db', o.db, '--id', o.id, '--share', o.share ?? 'edge-fleet', '--stats', String(o.statsMs ?? 500)];
  if (o.rollouts === false) args.push('--no-rollouts');
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGE_FLEET_CLI: '1' } });
  let out = '', err = '', ready = false, last: Stats | undefined, markAt = Infinity;
  const window: Stats[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.includes('"ready":true')) ready = true;
      else if (line.startsWith('{"stats"')) {
        last = (JSON.parse(line) as { stats: Stats }).stats;
        if (last.t >= markAt) window.push(last);
      } else out += line + '\n';
    }
  });
  // stderr is the controller's log: kept (the last 64 KB) for failures, not printed.
  let tookOver = 0;
  proc.stderr!.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    if (!tookOver && text.includes('took over the session')) tookOver = Date.now();
    err = (err + text).slice(-65536);
  });
  await waitFor(() => {
    if (proc.exitCode !== null) throw new WaitAbort(`edge-fleet serve exited with ${proc.exitCode}: ${err}`);
    return ready;
  }, { timeoutMs: 60_000, what: `edge-fleet serve ${o.id} ready` });
  const exited = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  return {
    proc,
    sumCounter: (name) => last?.[name] ?? 0,
    mark: () => { markAt = Date.now(); window.length = 0; },
    sinceMark: () => ({
      lagP99: Math.max(0, ...window.map((s) => s.lagP99Ms)),
      lagMax: Math.max(0, ...window.map((s) => s.lagMaxMs)),
      rssMb: Math.max(0, ...window.map((s) => s.rssMb)),
    }),
    output: () => out + err,
    tookOverAt: () => tookOver,
    kill: () => { if (!exited()) proc.kill('SIGKILL'); },
    stop: async () => {
      if (exited()) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
}

export interface DeviceRow { deviceId: string; state: string }

/** Read-only questions to the controller's database. */
export interface DbReader {
  online(): Promise<number>;
  devices(): Promise<DeviceRow[]>;
  telemetryRows(): Promise<number>;
  duplicates(): Promise<number>;
  close(): Promise<void>;
}

/** A SQLite file (opened read-only; WAL lets it read while serve writes) or a postgres:// URL. */
export async function openDbReader(db: string): Promise<DbReader> {
  if (/^postgres(ql)?:\/\//.test(db)) {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const one = async (sql: string): Promise<number> => Number((await client.query(sql)).rows[0]?.n ?? 0);
    return {
      online: () => one(`SELECT count(*) AS n FROM devices WHERE state = 'online'`),
      devices: async () => (await client.query(`SELECT device_id AS "deviceId", state FROM devices`)).rows as DeviceRow[],
      telemetryRows: () => one('SELECT count(*) AS n FROM telemetry'),
      duplicates: () => one('SELECT coalesce(sum(duplicates), 0) AS n FROM batches'),
      close: () => client.end(),
    };
  }
  const Database = (await import('better-sqlite3')).default;
  let h: import('better-sqlite3').Database | undefined;
  // The file appears when serve first opens it.
  const open = (): import('better-sqlite3').Database => (h ??= new Database(db, { readonly: true, fileMustExist: true }));
  const one = (sql: string): number => {
    try {
      return Number((open().prepare(sql).get() as { n: number } | undefined)?.n ?? 0);
    } catch (err) {
      if (/no such table|unable to open|SQLITE_BUSY|database is locked/i.test(String(err))) return 0;
      throw err;
    }
  };
  return {
    online: async () => one(`SELECT count(*) AS n FROM devices WHERE state = 'online'`),
    devices: async () => open().prepare('SELECT device_id AS deviceId, state FROM devices').all() as DeviceRow[],
    telemetryRows: async () => one('SELECT count(*) AS n FROM telemetry'),
    duplicates: async () => one('SELECT coalesce(sum(duplicates), 0) AS n FROM batches'),
    close: async () => { h?.close(); },
  };
}

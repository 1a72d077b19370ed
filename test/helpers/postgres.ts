// A real PostgreSQL (Debian's postgresql-15 binaries) in a throwaway cluster on an ephemeral
// loopback port, per test. Tests run as root and initdb refuses root: the cluster belongs to
// the postgres user, and initdb and the server run as that user (setpriv execs in place, so
// the child's pid is the postmaster's and killing it stops the server).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';
import { WaitAbort, waitFor } from './wait.js';
import { killOnExit } from './cleanup.js';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Postgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication on loopback). */
  url: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  /** A new empty database on this server, and its URL (one per test keeps tests apart). */
  createDatabase(name: string): Promise<string>;
  /** stdout+stderr of the server so far. */
  output(): string;
  stop(): Promise<void>;
}

/** argv that runs `cmd` as the postgres user when we are root (initdb refuses root). */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  if (userInfo().uid !== 0) return [cmd, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', cmd, ...args]];
}

function postgresIds(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function initCluster(dir: string): string {
  const data = path.join(dir, 'data');
  const ids = postgresIds();
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const [cmd, args] = asPostgres(path.join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return data;
}

async function ready(url: string, proc: ChildProcess, out: () => string): Promise<void> {
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new WaitAbort(`postgres exited with ${proc.exitCode}: ${out()}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } finally {
      await c.end().catch(() => undefined);
    }
  }, { timeoutMs: 20_000, intervalMs: 50, what: `postgres accepting connections at ${url}` });
}

export async function startPostgres(): Promise<Postgres> {
  if (!existsSync(path.join(BIN, 'postgres'))) throw new Error(`no PostgreSQL at ${BIN} (apt-get install postgresql)`);
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-pg-'));
  const data = initCluster(dir);
  const port = await freePort();
  // fsync off: a throwaway cluster; the tests measure behaviour, not durability on power loss.
  const [cmd, args] = asPostgres(path.join(BIN, 'postgres'), [
    '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200',
  ]);
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  killOnExit(() => { proc.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await ready(url, proc, () => out);
  return {
    url, port, dir, proc,
    output: () => out,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGINT'); // fast shutdown
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

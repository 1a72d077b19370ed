// `edge-agent supervise`: what systemd's Restart= does, for devices without systemd and for
// tests. Before every start it runs the boot guard (which counts the starts of a pending
// release and rolls back a crash loop), then starts <root>/current's launcher, and starts it
// again whenever it exits. Its own state, for operators and tests, is
// <dataDir>/update/supervisor.json: its pid, the child's pid and release, starts, restarts
// and the last exit. SIGTERM or SIGINT stops the child (SIGTERM, then SIGKILL after
// stopTimeoutMs) and then the supervisor.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UpdateErrors } from '../errors.js';
import { bootGuard, type UpdatePaths } from './apply.js';
import { CURRENT_LINK, currentVersion, updateDir, writeFileAtomic } from './layout.js';

export interface SupervisorOptions extends UpdatePaths {
  maxStarts: number;
  /** Arguments for the agent (e.g. run --config FILE). */
  args: string[];
  restartDelayMs: number;
  stopTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface SupervisorStatus {
  pid: number;
  childPid: number | null;
  version: string | null;
  starts: number;
  restarts: number;
  lastExit: { version: string | null; code: number | null; signal: string | null; at: string } | null;
  guard: string | null;
}

/** How a release is started: its own launcher (bin/edge-agent-launch) or its node with its dist/. */
export function launcher(dir: string): { cmd: string; args: string[] } {
  const own = path.join(dir, 'bin', 'edge-agent-launch');
  if (existsSync(own)) return { cmd: own, args: [] };
  const node = path.join(dir, 'node', 'bin', 'node');
  return { cmd: existsSync(node) ? node : process.execPath, args: [path.join(dir, 'dist', 'agent', 'cli.js')] };
}

export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly status: SupervisorStatus = { pid: process.pid, childPid: null, version: null, starts: 0, restarts: 0, lastExit: null, guard: null };
  #child: ChildProcess | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;

  constructor(o: SupervisorOptions) {
    this.#o = o;
  }

  /** Runs until stop(). */
  async run(): Promise<void> {
    const log = this.#o.log ?? (() => undefined);
    while (!this.#stopping) {
      const guard = await bootGuard(this.#o, this.#o.maxStarts);
      this.status.guard = guard.action;
      if (guard.action !== 'none') log('boot guard', { action: guard.action, pending: guard.state.pending, last: guard.state.last });
      const version = currentVersion(this.#o.root);
      if (!version) throw UpdateErrors.NO_RELEASE(`${path.join(this.#o.root, CURRENT_LINK)} does not exist: nothing to start`);
      const dir = realpathSync(path.join(this.#o.root, CURRENT_LINK));
      const l = launcher(dir);
      const child = spawn(l.cmd, [...l.args, ...this.#o.args], {
        stdio: 'inherit',
        env: { ...(this.#o.env ?? process.env), EDGE_AGENT_RELEASE_DIR: dir, EDGE_AGENT_CLI: '1' },
      });
      this.#child = child;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', () => resolve({ code: 127, signal: null }));
      });
      this.status.starts++;
      this.status.childPid = child.pid ?? null;
      this.status.version = version;
      await this.#save();
      log('started', { version, pid: child.pid });
      const { code, signal } = await exited;
      this.#child = undefined;
      this.status.childPid = null;
      this.status.lastExit = { version, code, signal, at: new Date().toISOString() };
      log('exited', { version, code, signal });
      if (this.#stopping) break;
      this.status.restarts++;
      await this.#save();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.#o.restartDelayMs);
        this.#wake = () => { clearTimeout(t); resolve(); };
      });
      this.#wake = undefined;
    }
    await this.#save();
  }

  /** Stops the child (SIGTERM, then SIGKILL) and ends run(). */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), this.#o.stopTimeoutMs);
    await gone;
    clearTimeout(t);
  }

  async #save(): Promise<void> {
    await mkdir(updateDir(this.#o.dataDir), { recursive: true });
    await writeFileAtomic(path.join(updateDir(this.#o.dataDir), 'supervisor.json'), JSON.stringify(this.status) + '\n');
  }
}

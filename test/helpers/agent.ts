// Runs the real daemon (the compiled dist/ that the bin uses) as a child process and reads
// its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WaitAbort, waitFor } from './wait.js';
import { killOnExit } from './cleanup.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const agentCli = path.join(root, 'dist/agent/cli.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface AgentProcess {
  proc: ChildProcess;
  dir: string;
  configFile: string;
  logs: LogLine[];
  stderr(): string;
  /** Resolves with the first log line matching pred (already seen or future). */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  /** The health URL, once the agent said it is ready. */
  ready(timeoutMs?: number): Promise<string>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** A temp dir with a config file; `config` may leave out deviceId/dataDir/health.port. */
export function writeConfig(config: Record<string, unknown>, dir = mkdtempSync(path.join(tmpdir(), 'edge-agent-'))): { dir: string; file: string } {
  const full = {
    deviceId: 'test-device',
    dataDir: path.join(dir, 'data'),
    ...config,
    health: { port: 0, ...(config.health as object | undefined) },
  };
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(full, null, 2));
  return { dir, file };
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Arguments after the script (default: run --config <file>). */
  args?: string[];
  /** Node/V8 flags before the script (the shipped unit's, for footprint figures). */
  nodeArgs?: string[];
  /** What runs Node (default [process.execPath]): an emulator line ending in a node binary. */
  node?: string[];
  /** The agent's cli.js (default: this checkout's dist/agent/cli.js; a release's for a release). */
  cli?: string;
}

export function spawnAgent(config: Record<string, unknown>, opts: SpawnOptions = {}): AgentProcess {
  const { dir, file } = writeConfig(config);
  return spawnAgentWithFile(file, dir, opts);
}

export function spawnAgentWithFile(configFile: string, dir: string, opts: SpawnOptions = {}): AgentProcess {
  const [command, ...launch] = opts.node ?? [process.execPath];
  const proc = spawn(command!, [...launch, ...(opts.nodeArgs ?? []), opts.cli ?? agentCli, ...(opts.args ?? ['run', '--config', configFile])], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let err = '';
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, raw: true });
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ap: AgentProcess = {
    proc,
    dir,
    configFile,
    logs,
    stderr: () => err,
    waitForLog: (pred, timeoutMs = 20_000, what = 'log line') =>
      waitFor(() => {
        const hit = logs.find(pred);
        if (hit) return hit;
        if (proc.exitCode !== null) throw new WaitAbort(`agent exited (${proc.exitCode}) before ${what}: ${err}`);
        return undefined;
      }, { timeoutMs, what }),
    ready: async (timeoutMs = 30_000) => {
      // Listening (the URL is known); "edge-agent ready" follows once /readyz says so.
      const line = await ap.waitForLog((l) => l.msg === 'edge-agent listening', timeoutMs, 'edge-agent listening');
      return line.url as string;
    },
    exited: () => exit,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
  killOnExit(() => ap.kill('SIGKILL'));
  return ap;
}

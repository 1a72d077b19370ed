// `edge-fleet serve` as a real child process (the built CLI, dist/controller/cli.js): its
// output kept for assertions, killed when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killOnExit } from './cleanup.js';
import { WaitAbort, waitFor } from './wait.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/controller/cli.js');

export interface Serve { proc: ChildProcess; out(): string; err(): string }

export function spawnServe(args: string[]): Serve {
  const proc = spawn(process.execPath, [cli, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(() => proc.kill('SIGKILL'));
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { proc, out: () => out, err: () => err };
}

/** Waits for the `{"ready":true}` line; fails at once, with its stderr, if the process exits first. */
export async function serveReady(s: Serve): Promise<void> {
  await waitFor(() => {
    if (s.proc.exitCode !== null || s.proc.signalCode !== null) throw new WaitAbort(`edge-fleet serve exited (${s.proc.exitCode ?? s.proc.signalCode}): ${s.err().slice(-2000)}`);
    return s.out().includes('"ready":true');
  }, { timeoutMs: 30_000, what: 'edge-fleet serve ready' });
}

/** A started and ready `edge-fleet serve`, as its process. */
export async function startServe(args: string[]): Promise<ChildProcess> {
  const s = spawnServe(args);
  await serveReady(s);
  return s.proc;
}

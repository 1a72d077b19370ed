// A real Mosquitto broker (Debian package) on an ephemeral loopback port, per test.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canConnect, freePort } from './ports.js';
import { WaitAbort, waitFor } from './wait.js';
import { killOnExit } from './cleanup.js';

export interface Broker {
  port: number;
  url: string;
  dir: string;
  proc: ChildProcess;
  /** Stops the broker (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (and the same persistence file, if any). */
  restart(): Promise<void>;
  /** stdout+stderr collected so far. */
  output(): string;
}

export interface BrokerOptions {
  /** Extra mosquitto.conf lines (TLS listeners, ACLs...). When given, they replace the default listener block. */
  listenerConf?: (port: number, dir: string) => string;
  persistence?: boolean;
}

export async function startMosquitto(opts: BrokerOptions = {}): Promise<Broker> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-mosq-'));
  // Started as root, mosquitto drops to its own user: it must be able to write its persistence file here.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  const lines = [
    `persistence ${opts.persistence ? 'true' : 'false'}`,
    `persistence_location ${dir}/`,
    'log_dest stdout',
    'log_type error',
    'log_type warning',
    opts.listenerConf ? opts.listenerConf(port, dir) : `listener ${port} 127.0.0.1\nallow_anonymous true`,
  ];
  writeFileSync(conf, lines.join('\n') + '\n');
  let out = '';
  const broker: Broker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    proc: undefined as unknown as ChildProcess,
    output: () => out,
    async stop() {
      const p = broker.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      });
    },
    async restart() {
      await broker.stop();
      await launch();
    },
  };
  const launch = async (): Promise<void> => {
    const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    broker.proc = proc;
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new WaitAbort(`mosquitto exited with ${proc.exitCode}: ${out}`);
      return canConnect(port);
    }, { timeoutMs: 10_000, what: `mosquitto on port ${port}` });
  };
  await launch();
  const cleanup = (): void => {
    if (broker.proc.exitCode === null) broker.proc.kill('SIGKILL');
  };
  killOnExit(cleanup);
  return broker;
}

/** Stops the broker and removes its directory. */
export async function destroyMosquitto(b: Broker): Promise<void> {
  await b.stop();
  rmSync(b.dir, { recursive: true, force: true });
}

// A fleet PKI made by the real scripts/make-ca.sh, and a Mosquitto running the shipped
// production listener config (deploy/mosquitto/edge-tls.conf) with only paths and port changed.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync as run } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { startMosquitto, type Broker } from './mosquitto.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Pki {
  dir: string;
  file(name: string): string;
  read(name: string): Buffer;
  /** TLS options for a client identity: 'controller' or 'devices/ID'. */
  tls(identity: string): Pick<IClientOptions, 'ca' | 'cert' | 'key'>;
  remove(): void;
}

/** Runs scripts/make-ca.sh into a fresh temporary folder. */
export function makePki(devices: string[], extraArgs: string[] = []): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-pki-'));
  execFileSync(path.join(repoRoot, 'scripts', 'make-ca.sh'), ['--out', dir, ...extraArgs, ...devices], { stdio: 'pipe' });
  const file = (name: string): string => path.join(dir, name);
  const read = (name: string): Buffer => readFileSync(file(name));
  return {
    dir,
    file,
    read,
    tls: (id) => ({ ca: read('ca.crt'), cert: read(`${id}.crt`), key: read(`${id}.key`) }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Installs the broker's files as docs/security.md says (/etc/mosquitto/edge: key readable by
 * the mosquitto group only), because Mosquitto started as root drops to user mosquitto.
 */
export function installBrokerFiles(pki: Pki): string {
  const etc = path.join(pki.dir, 'broker-etc');
  mkdirSync(etc, { recursive: true });
  chmodSync(pki.dir, 0o711);
  chmodSync(etc, 0o755);
  for (const f of ['ca.crt', 'broker.crt', 'broker.key', 'acl']) copyFileSync(pki.file(f), path.join(etc, f));
  chmodSync(path.join(etc, 'broker.key'), 0o640);
  if (process.getuid?.() === 0) {
    const gid = Number(run('id', ['-g', 'mosquitto']).toString().trim());
    chownSync(path.join(etc, 'broker.key'), 0, gid);
  }
  return etc;
}

/** The shipped production listener, pointed at this PKI and a loopback port. */
export function productionListener(pki: Pki): (port: number) => string {
  const conf = readFileSync(path.join(repoRoot, 'deploy', 'mosquitto', 'edge-tls.conf'), 'utf8');
  const etc = installBrokerFiles(pki);
  return (port) => conf
    .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`)
    .replaceAll('/etc/mosquitto/edge/', `${etc}/`);
}

export async function startTlsBroker(pki: Pki): Promise<Broker & { tlsUrl: string }> {
  const b = await startMosquitto({ listenerConf: productionListener(pki) });
  return Object.assign(b, { tlsUrl: `mqtts://127.0.0.1:${b.port}` });
}

export type ConnectOutcome = { ok: true; client: MqttClient } | { ok: false; error: string };

/** Connects once (no retries) and reports whether the broker let the client in. */
export function tryConnect(url: string, opts: IClientOptions): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
    let done = false;
    const finish = (o: ConnectOutcome): void => {
      if (done) return;
      done = true;
      if (!o.ok) client.end(true);
      resolve(o);
    };
    client.once('connect', () => finish({ ok: true, client }));
    client.once('error', (err) => finish({ ok: false, error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }));
    client.once('close', () => finish({ ok: false, error: 'connection closed before CONNACK' }));
  });
}

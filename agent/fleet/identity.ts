// The device's own identity when it is provisioned by claim (docs/provisioning.md): a P-256
// key made on the device (mode 600, in dataDir/identity; it never leaves), a certificate the
// controller signs for it, first asked for with the batch's claim credential and renewed
// before expiry with the current certificate. Each key and certificate live in their own
// generation folder; "current" is a symlink switched atomically once a certificate works, so
// a power cut at any step leaves the last working identity (or none, and enrollment again).
import 'reflect-metadata';
import { X509Certificate, createPrivateKey, createPublicKey, randomUUID, webcrypto } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import type { MqttClient } from 'mqtt';
import type { Config } from '../config/schema.js';
import { FleetErrors, describe } from '../errors.js';
import type { Logger } from '../log.js';
import { checkPrivateKeyFile } from '../security/key-file.js';
import { provisionTopics, topics } from '../../protocol/topics.js';
import type { BrokerSession } from './broker-session.js';

x509.cryptoProvider.set(webcrypto as never);

interface Generation { dir: string; cert?: Buffer; key: Buffer; csr: string }
interface Answer { id: string | null; ok: boolean; certificate?: string; notAfter?: string; error?: { code: string; message: string } }

function writeFileDurable(file: string, data: Buffer, mode: number): void {
  const fd = openSync(file, 'w', mode);
  try { writeSync(fd, data); fsyncSync(fd); } finally { closeSync(fd); }
}
function syncDir(dir: string): void {
  try { const fd = openSync(dir, 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } } catch { /* not everywhere */ }
}
const cnOf = (cert: X509Certificate): string => /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';

export class DeviceIdentity {
  readonly root: string;
  #current: Generation | undefined;
  #trial: Generation | undefined;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #pending = new Map<string, (a: Answer) => void>();
  lastError: string | undefined;
  renewals = 0;
  renewAt: number | undefined;

  constructor(private readonly config: Config, private readonly log: Logger, private readonly session: BrokerSession) {
    this.root = path.join(config.dataDir, 'identity');
    session.useIdentity(() => this.#trial?.cert ? { cert: this.#trial.cert, key: this.#trial.key } : this.#current?.cert ? { cert: this.#current.cert, key: this.#current.key } : undefined);
  }

  get p(): NonNullable<Config['provisioning']> {
    return this.config.provisioning!;
  }

  /** Loads dataDir/identity/current when it holds a usable certificate for this device; removes unfinished generations. */
  load(): boolean {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    let name: string | undefined;
    try { name = readlinkSync(path.join(this.root, 'current')); } catch { name = undefined; }
    for (const e of readdirSync(this.root)) {
      if (e !== 'current' && e !== name) rmSync(path.join(this.root, e), { recursive: true, force: true });
    }
    if (!name) return false;
    const dir = path.join(this.root, name);
    try {
      const cert = readFileSync(path.join(dir, 'device.crt'));
      const key = readFileSync(path.join(dir, 'device.key'));
      this.#check(cert, key);
      this.#current = { dir, cert, key, csr: '' };
      return true;
    } catch (err) {
      this.log.warn({ err: describe(err), dir }, 'the stored device identity is not usable; enrolling again');
      return false;
    }
  }

  /** Throws unless `cert` is for this device and for `key`. */
  #check(cert: Buffer, key: Buffer): X509Certificate {
    const c = new X509Certificate(cert);
    if (cnOf(c) !== this.config.deviceId) throw new Error(`the certificate is for "${cnOf(c)}", not "${this.config.deviceId}"`);
    // Signed by the fleet CA the broker's certificate is checked against (mqtt.ca, maybe a bundle).
    const cas = readFileSync(this.config.mqtt.ca!, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (!cas.some((pem) => { try { return c.verify(new X509Certificate(pem).publicKey); } catch { return false; } })) {
      throw new Error('the certificate is not signed by the fleet CA (mqtt.ca)');
    }
    const mine = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
    if (!c.publicKey.export({ type: 'spki', format: 'der' }).equals(mine)) throw new Error('the certificate is not for the device\'s key');
    return c;
  }

  info(): Record<string, unknown> {
    const c = this.#current?.cert ? new X509Certificate(this.#current.cert) : undefined;
    return {
      provisioned: Boolean(c),
      serial: c?.serialNumber ?? null,
      notAfter: c ? new Date(c.validTo).toISOString() : null,
      renewAt: this.renewAt ? new Date(this.renewAt).toISOString() : null,
      renewals: this.renewals,
      lastError: this.lastError ?? null,
    };
  }

  /** A new key (in its own generation folder, mode 600) and a CSR for it (CN = device id). */
  async #newGeneration(): Promise<Generation> {
    const alg = { name: 'ECDSA', namedCurve: 'P-256' };
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${this.config.deviceId}`,
      keys: keys as never,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    });
    const key = Buffer.from(x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'));
    const dir = path.join(this.root, `gen-${Date.now()}-${randomUUID().slice(0, 8)}`);
    mkdirSync(dir, { mode: 0o700 });
    writeFileDurable(path.join(dir, 'device.key'), key, 0o600);
    return { dir, key, csr: csr.toString('pem') };
  }

  /** Stores the certificate beside its key and makes it the current identity (atomic symlink switch). */
  #commit(gen: Generation, certPem: string): void {
    const cert = Buffer.from(certPem);
    this.#check(cert, gen.key);
    writeFileDurable(path.join(gen.dir, 'device.crt'), cert, 0o644);
    syncDir(gen.dir);
    const tmp = path.join(this.root, 'current.tmp');
    rmSync(tmp, { force: true });
    symlinkSync(path.basename(gen.dir), tmp);
    renameSync(tmp, path.join(this.root, 'current'));
    syncDir(this.root);
    const old = this.#current;
    this.#current = { ...gen, cert };
    if (old && old.dir !== gen.dir) rmSync(old.dir, { recursive: true, force: true });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#wake = () => { clearTimeout(t); resolve(); };
    });
  }

  /** First start: asks with the claim credential until a certificate is issued (or the agent stops). */
  async enrollByClaim(): Promise<boolean> {
    const p = this.p;
    checkPrivateKeyFile(p.claimKey, 'provisioning.claimKey');
    const claimCert = readFileSync(p.claimCert);
    const claimKey = readFileSync(p.claimKey);
    const claim = cnOf(new X509Certificate(claimCert));
    const gen = await this.#newGeneration();
    while (!this.#stopped) {
      try {
        const answer = await this.#askWithClaim(claim, claimCert, claimKey, gen.csr);
        if (answer.ok && answer.certificate) {
          this.#commit(gen, answer.certificate);
          this.lastError = undefined;
          this.log.info({ claim, notAfter: answer.notAfter }, 'enrolled: the device has its own certificate');
          return true;
        }
        const e = answer.error ?? { code: FleetErrors.ENROLL_FAILED.code, message: 'refused without a reason' };
        this.lastError = `${e.code}: ${e.message}`;
        this.log.error({ code: e.code, claim }, `enrollment refused by the controller: ${e.message}`);
      } catch (err) {
        this.lastError = describe(err);
        this.log.warn({ err: this.lastError, claim }, 'enrollment did not complete; trying again');
      }
      await this.#sleep(p.retryMs);
    }
    return false;
  }

  async #askWithClaim(claim: string, cert: Buffer, key: Buffer, csr: string): Promise<Answer> {
    const m = this.config.mqtt;
    const connect = (await import('mqtt')).default.connectAsync;
    const client: MqttClient = await connect(m.url!, {
      clientId: `${claim}.${this.config.deviceId}`.slice(0, 128), clean: true, protocolVersion: 5, reconnectPeriod: 0,
      connectTimeout: m.connectTimeoutMs, ca: readFileSync(m.ca!), cert, key, rejectUnauthorized: true,
    });
    try {
      const id = randomUUID();
      const res = provisionTopics.res(claim, this.config.deviceId);
      const answer = new Promise<Answer>((resolve) => client.on('message', (topic, payload) => {
        if (topic !== res) return;
        try {
          const a = JSON.parse(payload.toString('utf8')) as Answer;
          if (a.id === id || a.id === null) resolve(a);
        } catch { /* not an answer */ }
      }));
      await client.subscribeAsync(res, { qos: 1 });
      await client.publishAsync(provisionTopics.req(claim, this.config.deviceId), JSON.stringify({ id, deviceId: this.config.deviceId, csr }), { qos: 1 });
      return await this.#within(answer, 'the enrollment answer');
    } finally {
      await client.endAsync().catch(() => undefined);
    }
  }

  #within<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.p.requestTimeoutMs;
    let t: NodeJS.Timeout | undefined;
    return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(FleetErrors.TIMEOUT(what, ms)), ms); })]).finally(() => clearTimeout(t));
  }

  /** Plans the next renewal from the current certificate's lifetime (renewAt, minus jitter). */
  scheduleRenewal(delayMs?: number): void {
    clearTimeout(this.#timer);
    if (this.#stopped || !this.#current?.cert) return;
    if (delayMs === undefined) {
      const c = new X509Certificate(this.#current.cert);
      const from = Date.parse(c.validFrom), to = Date.parse(c.validTo);
      const share = this.p.renewAt - this.p.renewJitter * Math.random();
      this.renewAt = from + (to - from) * share;
      delayMs = Math.max(0, this.renewAt - Date.now());
    } else {
      this.renewAt = Date.now() + delayMs;
    }
    this.#timer = setTimeout(() => void this.#renew(), Math.min(delayMs, 2 ** 31 - 1));
    this.#timer.unref();
  }

  /** An answer on edge/v1/DEVICE/cert/res. */
  onRenewalAnswer(payload: Buffer): void {
    try {
      const a = JSON.parse(payload.toString('utf8')) as Answer;
      if (typeof a.id === 'string') this.#pending.get(a.id)?.(a);
    } catch { /* not an answer */ }
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    const retry = Math.max(1000, Math.min(this.p.retryMs, this.#remainingMs() / 4));
    if (!this.session.connected) {
      this.scheduleRenewal(retry);
      return;
    }
    let gen: Generation | undefined;
    try {
      gen = await this.#newGeneration();
      const id = randomUUID();
      const answer = new Promise<Answer>((resolve) => this.#pending.set(id, resolve));
      await this.session.publish(topics.certReq(this.config.deviceId), JSON.stringify({ id, deviceId: this.config.deviceId, csr: gen.csr }), { qos: 1 });
      const a = await this.#within(answer, 'the renewal answer').finally(() => this.#pending.delete(id));
      if (!a.ok || !a.certificate) throw new Error(`${a.error?.code ?? 'refused'}: ${a.error?.message ?? 'no certificate'}`);
      const cert = Buffer.from(a.certificate);
      this.#check(cert, gen.key);
      // The new certificate is tried before it replaces the old one.
      this.#trial = { ...gen, cert };
      const ok = await this.session.reconnectNow(this.config.mqtt.connectTimeoutMs + 5000);
      this.#trial = undefined;
      if (!ok) {
        await this.session.reconnectNow(this.config.mqtt.connectTimeoutMs + 5000);
        throw new Error('the broker did not accept the renewed certificate; keeping the current one');
      }
      this.#commit(gen, a.certificate);
      this.renewals++;
      this.lastError = undefined;
      this.log.info({ notAfter: a.notAfter }, 'device certificate renewed');
      this.scheduleRenewal();
    } catch (err) {
      if (gen && this.#current?.dir !== gen.dir) rmSync(gen.dir, { recursive: true, force: true });
      this.lastError = describe(err);
      this.log.warn({ err: this.lastError, retryInMs: retry }, 'device certificate renewal failed; trying again');
      this.scheduleRenewal(retry);
    }
  }

  #remainingMs(): number {
    if (!this.#current?.cert) return 0;
    return Date.parse(new X509Certificate(this.#current.cert).validTo) - Date.now();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
  }
}

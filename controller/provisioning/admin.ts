// What `edge-fleet enroll ...` and `edge-fleet revoke` do (docs/provisioning.md), as functions
// the CLI and the tests call: set up the provisioning state, add and disable claims (a claim
// certificate and key for a batch's image), revoke and un-revoke devices.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ID_PATTERN } from '../../protocol/names.js';
import { applyBrokerFiles } from './broker-files.js';
import { issueClaimCert, loadCa } from './ca.js';
import { ProvisioningStore, type BrokerFiles, type ClaimPolicy, type DeviceRecord } from './state.js';
import type { BrokerTls } from '../broker-tls.js';

export interface InitOptions extends BrokerFiles {
  caCert: string;
  caKey: string;
}

/** Creates the state, writes the first ACL and CRL, reloads the broker. */
export async function initProvisioning(dir: string, o: InitOptions): Promise<void> {
  const ca = await loadCa(o.caCert, o.caKey); // fails early on a CA that cannot be used
  const store = new ProvisioningStore(dir);
  const abs = (f: string): string => path.resolve(f);
  store.init({
    version: 1,
    ca: { cert: abs(o.caCert), key: abs(o.caKey) },
    broker: { aclFile: abs(o.aclFile), aclBase: abs(o.aclBase), crlFile: o.crlFile ? abs(o.crlFile) : undefined, reload: o.reload },
    claims: {},
    devices: {},
    revokedSerials: [],
    recent: {},
  });
  await applyBrokerFiles(store.read(), ca);
}

export interface ClaimOptions {
  pattern: string;
  allow?: string[];
  groups?: string[];
  lifetimeSeconds: number;
  perHour: number;
  /** Lifetime of the claim certificate itself (s). */
  claimLifetimeSeconds: number;
  /** Where the claim's certificate (NAME.crt), key (NAME.key, mode 600) and the CA go. */
  out: string;
}

export async function addClaim(dir: string, name: string, o: ClaimOptions): Promise<{ cert: string; key: string; ca: string }> {
  if (!ID_PATTERN.test(name)) throw new Error(`a claim name is one topic level (letters, digits, _ and -, up to 64), got "${name}"`);
  try {
    new RegExp(o.pattern);
  } catch (err) {
    throw new Error(`--pattern ${o.pattern}: ${(err as Error).message}`);
  }
  const store = new ProvisioningStore(dir);
  return store.update(async (s) => {
    if (s.claims[name]) throw new Error(`claim "${name}" exists already`);
    if (s.devices[name]) throw new Error(`"${name}" is a device id; a claim needs a name of its own`);
    const ca = await loadCa(s.ca.cert, s.ca.key);
    const issued = await issueClaimCert(ca, name, o.claimLifetimeSeconds);
    mkdirSync(o.out, { recursive: true });
    const files = { cert: path.join(o.out, `${name}.crt`), key: path.join(o.out, `${name}.key`), ca: path.join(o.out, 'ca.crt') };
    writeFileSync(files.key, issued.keyPem, { mode: 0o600 });
    writeFileSync(files.cert, issued.pem, { mode: 0o644 });
    writeFileSync(files.ca, ca.pem, { mode: 0o644 });
    const claim: ClaimPolicy = {
      name, pattern: o.pattern, allow: o.allow ?? [], groups: o.groups ?? [], lifetimeSeconds: o.lifetimeSeconds,
      perHour: o.perHour, enabled: true, serial: issued.serial, createdAt: new Date().toISOString(),
    };
    s.claims[name] = claim;
    await applyBrokerFiles(s, ca);
    return { write: true, value: files };
  });
}

/** Disables a claim: the broker denies it everything, its certificate goes on the CRL. */
export async function disableClaim(dir: string, name: string): Promise<void> {
  await new ProvisioningStore(dir).update(async (s) => {
    const c = s.claims[name];
    if (!c) throw new Error(`no claim "${name}"`);
    c.enabled = false;
    if (c.serial && !s.revokedSerials.some((r) => r.serial === c.serial)) s.revokedSerials.push({ serial: c.serial, at: new Date().toISOString() });
    await applyBrokerFiles(s, await loadCa(s.ca.cert, s.ca.key));
    return { write: true, value: undefined };
  });
}

/** Revokes a device: every certificate it holds goes on the CRL, its ACL block denies all, re-enrollment is refused. */
export async function revokeDevice(dir: string, id: string): Promise<DeviceRecord> {
  return new ProvisioningStore(dir).update(async (s) => {
    const d = s.devices[id];
    if (!d) throw new Error(`no device "${id}" was enrolled by this controller ("edge-fleet enroll devices" lists them)`);
    const at = new Date().toISOString();
    d.revoked = at;
    for (const c of d.certs) {
      if (Date.parse(c.notAfter) > Date.now() && !s.revokedSerials.some((r) => r.serial === c.serial)) s.revokedSerials.push({ serial: c.serial, at });
    }
    await applyBrokerFiles(s, await loadCa(s.ca.cert, s.ca.key));
    return { write: true, value: d };
  });
}

/**
 * Ends a revoked device's open connection: Mosquitto's reload keeps connections that are
 * already open (the ACL then denies them every topic, the CRL refuses them only at their next
 * handshake). Connecting once with the device's client id and a clean start takes its session
 * over, so the broker closes the device's connection; its reconnect then fails the handshake.
 */
export async function disconnectDevice(broker: string, tls: BrokerTls | undefined, id: string): Promise<void> {
  const { connectFleet } = await import('../connect.js');
  const { client } = await connectFleet(broker, { clientId: id, clean: true, tls, timeoutMs: 10_000 });
  await client.endAsync();
}

/** Allows a revoked device to enroll again through its claim (its old certificates stay revoked). */
export async function unrevokeDevice(dir: string, id: string): Promise<void> {
  await new ProvisioningStore(dir).update(async (s) => {
    const d = s.devices[id];
    if (!d?.revoked) throw new Error(`device "${id}" is not revoked`);
    delete d.revoked;
    await applyBrokerFiles(s, await loadCa(s.ca.cert, s.ca.key));
    return { write: true, value: undefined };
  });
}

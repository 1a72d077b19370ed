// What `npm start` (scripts/start-fleet.ts) and its demos (scripts/demo/) share: free ports,
// the demo signing key made on first start, and the sample digits packages signed with it.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildReference } from '../agent/drift/reference.js';
import type { DriftSpec } from '../agent/drift/spec.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { DIGIT_PIXELS, heldOutHalves } from '../tools/edge-model/digits.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The preferred port when it is free, else any free one. */
export function port(preferred: number): Promise<number> {
  const tryPort = (p: number): Promise<number> => new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(p, '127.0.0.1', () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
  return tryPort(preferred).catch(() => tryPort(0));
}

export interface DemoKeys { publicKeyPem: string; privateKeyPem: string }

/** The fleet's demo signing key, made on first start in `home` (signatures stay on). */
export function demoKeys(home: string): DemoKeys {
  const keyFile = path.join(home, 'demo-signing-key.json');
  if (!existsSync(keyFile)) {
    mkdirSync(home, { recursive: true });
    writeFileSync(keyFile, JSON.stringify(generateKeyPair()), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(keyFile, 'utf8')) as DemoKeys;
}

/** The sample packages, copied under `home` and signed with the demo key. */
export async function samplePackages(home: string): Promise<{ publicKeyPem: string; fp32: string; int8: string }> {
  const keys = demoKeys(home);
  const out: Record<string, string> = {};
  for (const name of ['digits-fp32', 'digits-int8']) {
    const dir = path.join(home, 'packages', name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(path.join(root, 'models', name), dir, { recursive: true });
    withDriftReference(dir);
    await signPackage(dir, keys.privateKeyPem);
    out[name] = dir;
  }
  return { publicKeyPem: keys.publicKeyPem, fp32: out['digits-fp32']!, int8: out['digits-int8']! };
}

/**
 * A package built without calibration data has an empty drift reference; the demo copy gets
 * one from the reference half of the held-out digits (input pixels only), so the agent reports
 * drift windows. (Not training digits: the model is more confident on those than on new ones.)
 */
function withDriftReference(dir: string): void {
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { drift?: Record<string, unknown>; inputs: { name: string }[] };
  if (manifest.drift && Object.keys(manifest.drift).length) return;
  const { reference } = heldOutHalves();
  const n = reference.count;
  const input = { dtype: 'float32' as const, shape: [n, 1, 28, 28], data: reference.images.slice(0, n * DIGIT_PIXELS) };
  manifest.drift = buildReference([{ inputs: { [manifest.inputs[0]!.name]: input } }],
    { inputs: [{ kind: 'image', tensor: manifest.inputs[0]!.name, channelAxis: 1 }] } as DriftSpec) as unknown as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
}

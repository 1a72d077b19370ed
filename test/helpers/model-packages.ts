// For the model runtime and API tests: copies of the sample packages to break, an agent in
// this process serving them over real HTTP on an ephemeral port, and held-out digits.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../agent/agent.js';
import { parseConfig } from '../../agent/config/load.js';
import { sha256 } from '../../agent/models/hash.js';
import { heldOutDigits, DIGIT_PIXELS, type DigitSet } from '../../tools/edge-model/digits.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FP32 = path.join(root, 'models/digits-fp32');
export const INT8 = path.join(root, 'models/digits-int8');
/** The sample packages' versions (read, not assumed: the int8 one is rebuilt by the quantizer). */
export const FP32_VERSION: string = JSON.parse(readFileSync(path.join(FP32, 'manifest.json'), 'utf8')).version;
export const INT8_VERSION: string = JSON.parse(readFileSync(path.join(INT8, 'manifest.json'), 'utf8')).version;

export function tempDir(prefix = 'edge-models-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A copy of a package folder that a test may break. */
export function copyPackage(src: string, into = tempDir()): string {
  const dest = path.join(into, `${path.basename(src)}-${Math.random().toString(36).slice(2, 8)}`);
  cpSync(src, dest, { recursive: true });
  return dest;
}

export function readManifest(dir: string): Record<string, any> {
  return JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
}

export function writeManifest(dir: string, m: Record<string, unknown>): void {
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
}

/** Replaces a package file and records its new hash, so only the intended problem remains. */
export function replaceFile(dir: string, name: string, bytes: Uint8Array): void {
  writeFileSync(path.join(dir, name), bytes);
  const m = readManifest(dir);
  m.files[name] = { sha256: sha256(bytes), bytes: bytes.length };
  writeManifest(dir, m);
}

let digits: DigitSet | undefined;
export function heldOut(): DigitSet {
  digits ??= heldOutDigits();
  return digits;
}

/** `count` held-out digits from `start`, as one [count,1,28,28] float32 batch. */
export function digitBatch(start: number, count: number): { data: Float32Array; labels: number[]; shape: number[] } {
  const d = heldOut();
  return {
    data: d.images.slice(start * DIGIT_PIXELS, (start + count) * DIGIT_PIXELS),
    labels: Array.from(d.labels.subarray(start, start + count)),
    shape: [count, 1, 28, 28],
  };
}

/**
 * The k-th of the held-out digits in an order that mixes the classes (a prime stride through
 * the set), as a [1,1,28,28] batch: labelled traffic whose accuracy means something.
 */
export function mixedDigit(k: number): { data: Float32Array; labels: number[]; shape: number[] } {
  return digitBatch((k * 7919) % heldOut().count, 1);
}

export interface RunningAgent {
  agent: Agent;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/** A real agent in this process, listening on an ephemeral loopback port. */
export async function startAgent(config: Record<string, unknown>): Promise<RunningAgent> {
  const dir = tempDir('edge-agent-models-');
  const cfg = parseConfig({
    deviceId: 'models-test',
    dataDir: path.join(dir, 'data'),
    log: { level: 'silent' },
    security: { requireSignedPackages: false },
    ...config,
    health: { port: 0, ...(config.health as object | undefined) },
  }, 'test config', dir);
  const agent = new Agent(cfg);
  await agent.start();
  return {
    agent,
    url: agent.url,
    dir,
    async stop() {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postJson(url: string, body: unknown, raw?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

export const argmax = (row: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
};

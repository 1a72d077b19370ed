// Signed fleet commands. The broker ACL already limits who can publish to a device's command
// topic (the controller only); signing adds a second, end-to-end check that survives a
// compromised broker: the controller signs {device, id, name, args, ts} with its ed25519 key,
// the device checks the signature against its configured controller keys, refuses anything
// outside a time window, and remembers the ids it accepted inside that window (replays).
//
// Wire form: the command JSON gains a "sig" member:
//   {"id": "...", "name": "...", "args": {...}, "sig": {"keyId": "...", "ts": 1732800000000, "signature": "<base64>"}}
// The signed bytes are canonicalJson({device, id, name, args, ts}) (sorted keys, no spaces),
// so the device id in the signature stops a command for one device being replayed to another.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Errors } from '../errors.js';
import { keyIdOf } from './signing.js';

export interface CommandSignature {
  keyId: string;
  /** Milliseconds since the epoch when the controller signed. */
  ts: number;
  signature: string;
}

export interface SignableCommand {
  id: string;
  name: string;
  args?: unknown;
}

/** JSON with object keys sorted at every level, no whitespace; refuses what JSON cannot carry exactly. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > 64) throw new Error('value nests deeper than 64 levels');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string': return JSON.stringify(value);
    case 'boolean': return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`${value} has no JSON form`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(',')}]`;
      const o = value as Record<string, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k], depth + 1)}`).join(',')}}`;
    }
    default:
      throw new Error(`a ${typeof value} has no JSON form`);
  }
}

function signedBytes(device: string, cmd: SignableCommand, ts: number): Buffer {
  return Buffer.from(canonicalJson({ device, id: cmd.id, name: cmd.name, args: cmd.args ?? {}, ts }), 'utf8');
}

/** The controller side: returns the command with its "sig" member. */
export function signCommand<C extends SignableCommand>(cmd: C, device: string, privateKeyPem: string, now = Date.now()): C & { sig: CommandSignature } {
  const key = createPrivateKey(privateKeyPem);
  const keyId = keyIdOf(createPublicKey(key));
  const signature = sign(null, signedBytes(device, cmd, now), key).toString('base64');
  return { ...cmd, sig: { keyId, ts: now, signature } };
}

export interface CommandCheckOptions {
  /** Largest allowed |now - ts| (ms). */
  maxSkewMs: number;
  now?: number;
}

/**
 * Remembers accepted (keyId, id) pairs until they fall out of the time window, so that a
 * captured command cannot be played again while its timestamp is still acceptable.
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  constructor(private readonly maxSkewMs: number, private readonly maxEntries = 100_000) {}

  /** True when this id was not seen inside the window (and records it); false for a replay. */
  admit(keyId: string, id: string, ts: number, now = Date.now()): boolean {
    for (const [k, t] of this.#seen) {
      // Oldest first (insertion order is close to ts order); stop at the first live entry.
      if (t >= now - 2 * this.maxSkewMs && this.#seen.size <= this.maxEntries) break;
      this.#seen.delete(k);
    }
    const k = `${keyId}\u0000${id}`;
    if (this.#seen.has(k)) return false;
    this.#seen.set(k, ts);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * Checks one parsed command addressed to `device`. Returns the signing keyId, or throws
 * EDGE_COMMAND_SIGNATURE saying why: unsigned, malformed signature, unknown key, bad
 * signature, outside the time window, or a replay.
 */
export function verifyCommand(
  msg: unknown,
  device: string,
  keys: Map<string, KeyObject>,
  opts: CommandCheckOptions,
  replays?: ReplayGuard,
): string {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw Errors.COMMAND_SIGNATURE('a command must be a JSON object');
  const m = msg as Record<string, unknown>;
  if (typeof m.id !== 'string' || typeof m.name !== 'string') throw Errors.COMMAND_SIGNATURE('a command needs string "id" and "name"');
  const sig = m.sig as Record<string, unknown> | undefined;
  if (sig === undefined) throw Errors.COMMAND_SIGNATURE('this device accepts only signed commands (security.commands.requireSignature) and the command has no "sig"');
  if (typeof sig !== 'object' || sig === null || typeof sig.keyId !== 'string' || typeof sig.signature !== 'string'
    || typeof sig.ts !== 'number' || !Number.isSafeInteger(sig.ts)) {
    throw Errors.COMMAND_SIGNATURE('"sig" must be {keyId: string, ts: integer milliseconds, signature: base64}');
  }
  const key = keys.get(sig.keyId);
  if (!key) throw Errors.COMMAND_SIGNATURE(`signed by key ${sig.keyId.slice(0, 32)}, which is not a configured controller key`);
  const now = opts.now ?? Date.now();
  const skew = now - sig.ts;
  if (Math.abs(skew) > opts.maxSkewMs) {
    throw Errors.COMMAND_SIGNATURE(`signed ${Math.round(skew / 1000)} s ${skew > 0 ? 'ago' : 'in the future'}, outside the ${Math.round(opts.maxSkewMs / 1000)} s window (check the clocks, or a replay)`);
  }
  let bytes: Buffer;
  try {
    bytes = signedBytes(device, { id: m.id, name: m.name, args: m.args }, sig.ts);
  } catch (err) {
    throw Errors.COMMAND_SIGNATURE(`the command cannot be canonicalized: ${(err as Error).message}`);
  }
  // Strict base64 of exactly 64 bytes: Node's decoder skips stray characters, and a lenient
  // check would accept many spellings of one signature.
  if (!/^[A-Za-z0-9+/]{86}==$/.test(sig.signature)) throw Errors.COMMAND_SIGNATURE('"sig.signature" must be the base64 of a 64-byte ed25519 signature');
  const raw = Buffer.from(sig.signature, 'base64');
  if (!verify(null, bytes, key, raw)) {
    throw Errors.COMMAND_SIGNATURE(`the signature does not verify with key ${sig.keyId} for device ${device}`);
  }
  if (replays && !replays.admit(sig.keyId, m.id, sig.ts, now)) {
    throw Errors.COMMAND_SIGNATURE(`command id ${m.id} was already accepted inside the time window (a replay)`);
  }
  return sig.keyId;
}

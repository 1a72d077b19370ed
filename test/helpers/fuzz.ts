// Shared pieces of the fuzz tests: byte-level mutations of valid inputs, and the oracle that
// every refusal is a clear, typed error (an EdgeError with a stable code and a sentence),
// never a TypeError/RangeError from deep inside a parser.
import fc from 'fast-check';
import { EdgeError } from '../../agent/errors.js';

/** How many inputs each property gets; FUZZ_RUNS raises it for a long local run. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

type Mutation = (b: Uint8Array, r: number[]) => Uint8Array;
const at = (b: Uint8Array, x: number): number => (b.length === 0 ? 0 : x % b.length);
const MUTATIONS: Mutation[] = [
  (b, [i, v]) => { const c = b.slice(); if (c.length) c[at(c, i)] ^= 1 << (v % 8); return c; },      // flip a bit
  (b, [i, v]) => { const c = b.slice(); if (c.length) c[at(c, i)] = v & 0xff; return c; },           // set a byte
  (b, [i]) => b.slice(0, at(b, i)),                                                                  // truncate
  (b, [i, v]) => { const s = at(b, i); return Uint8Array.from([...b.subarray(0, s), ...b.subarray(s + (v % 16) + 1)]); }, // delete
  (b, [i, v, w]) => { const s = at(b, i); const ins = Array.from({ length: (v % 16) + 1 }, (_, k) => (w * (k + 7)) & 0xff); return Uint8Array.from([...b.subarray(0, s), ...ins, ...b.subarray(s)]); }, // insert
  (b, [i, v]) => { const s = at(b, i); const e = Math.min(b.length, s + (v % 32) + 1); return Uint8Array.from([...b.subarray(0, e), ...b.subarray(s, e), ...b.subarray(e)]); }, // duplicate a range
  (b, [i, v]) => { const c = b.slice(); if (c.length) c[at(c, i)] = [0x00, 0xff, 0x7f, 0x80][v % 4]!; return c; }, // boundary bytes
];

/** Valid inputs with 1..6 random byte-level mutations applied. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const step = fc.tuple(fc.nat(MUTATIONS.length - 1), fc.nat(1 << 20), fc.nat(255), fc.nat(255));
  return fc.tuple(valid, fc.array(step, { minLength: 1, maxLength: 6 })).map(([b, steps]) =>
    steps.reduce((acc, [m, i, v, w]) => MUTATIONS[m]!(acc, [i, v, w]), b));
}

/** Mutations of a valid text at the character level (structure-aware inputs for text formats). */
export function mutatedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const token = fc.constantFrom('"', '{', '}', '[', ']', ',', ':', 'null', '-1', '1e309', '0', '""', 'true', '\\u0000', '9007199254740993', '__proto__', 'constructor', '\n');
  const step = fc.tuple(fc.nat(3), fc.nat(1 << 16), fc.nat(64), token);
  return fc.tuple(valid, fc.array(step, { minLength: 1, maxLength: 5 })).map(([s, steps]) => steps.reduce((acc, [m, i, n, tok]) => {
    const p = acc.length ? i % acc.length : 0;
    switch (m) {
      case 0: return acc.slice(0, p) + tok + acc.slice(p);            // insert a token
      case 1: return acc.slice(0, p) + acc.slice(p + n + 1);          // delete a span
      case 2: return acc.slice(0, p) + tok + acc.slice(p + n + 1);    // replace a span
      default: return acc.slice(0, p);                                // truncate
    }
  }, s));
}

export interface Refusal { code: string; message: string }

/**
 * Runs fn; returns undefined when it accepted the input, or the refusal. Throws (failing the
 * property) when it threw anything but an EdgeError with an EDGE_ code and a real sentence.
 */
export function refusalOf(fn: () => unknown, codes?: readonly string[]): Refusal | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return checkRefusal(err, codes);
  }
}

export async function asyncRefusalOf(fn: () => Promise<unknown>, codes?: readonly string[]): Promise<Refusal | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return checkRefusal(err, codes);
  }
}

function checkRefusal(err: unknown, codes?: readonly string[]): Refusal {
  if (!(err instanceof EdgeError)) {
    throw new Error(`not a clear refusal: ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.stack ?? String(err)}`);
  }
  if (!/^EDGE_[A-Z0-9_]+$/.test(err.code)) throw new Error(`refusal without a stable code: ${err.code}`);
  if (codes && !codes.includes(err.code)) throw new Error(`unexpected code ${err.code} (expected ${codes.join(' or ')}): ${err.message}`);
  if (err.message.length < 12 || /\[object Object\]/.test(err.message)) throw new Error(`unclear refusal message: ${JSON.stringify(err.message)}`);
  return { code: err.code, message: err.message };
}

/** Collects unhandled rejections and uncaught exceptions for the life of a test file. */
export function watchUnhandled(): () => unknown[] {
  const seen: unknown[] = [];
  process.on('unhandledRejection', (r) => seen.push(r));
  return () => seen;
}

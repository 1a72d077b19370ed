// Fuzzing the telemetry decoder the controller runs on every device message: random bytes,
// mutated gzip, and well-compressed but mutated JSON Lines. Each is decoded consistently or
// refused with EDGE_TELEMETRY_BATCH_INVALID; gzip bombs are refused before they inflate.
import t from 'tap';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { decodeBatch, encodeBatch, type DecodedBatch } from '../protocol/telemetry-batch.js';
import { RUNS, mutated, mutatedText, refusalOf } from './helpers/fuzz.js';

const CODES = ['EDGE_TELEMETRY_BATCH_INVALID'];
const MAX = 256 * 1024;

function checkAccepted(b: DecodedBatch): void {
  if (b.records.length !== b.count || b.records.length === 0) throw new Error(`accepted a batch whose count ${b.count} is not its ${b.records.length} records`);
  for (let i = 1; i < b.records.length; i++) {
    if (!(b.records[i]!.seq > b.records[i - 1]!.seq)) throw new Error('accepted a batch with non-increasing sequence numbers');
  }
  if (b.records[0]!.seq !== b.first || b.records.at(-1)!.seq !== b.last) throw new Error('accepted first/last that do not match');
}

function decodeOrRefuse(bytes: Uint8Array): void {
  let out: DecodedBatch | undefined;
  refusalOf(() => { out = decodeBatch(bytes, { maxBytes: MAX }); }, CODES);
  if (out) checkAccepted(out);
}

const payload = fc.jsonValue({ maxDepth: 3 });
const records = fc.array(fc.tuple(fc.nat(1000), fc.integer({ min: 0, max: 2 ** 42 }), payload), { minLength: 1, maxLength: 8 })
  .map((rs) => {
    let seq = 0;
    return rs.map(([gap, ts, p]) => ({ seq: (seq += gap + 1), ts, payload: p }));
  });
const stream = fc.constantFrom('metrics', 'inference', 'drift', 'x.y-z');
const batchText = fc.tuple(stream, records).map(([s, rs]) => {
  const b = decodeBatch(encodeBatch(s, rs, 'db1'));
  return [JSON.stringify({ v: b.v, stream: b.stream, db: b.db, count: b.count, first: b.first, last: b.last }),
    ...b.records.map((r) => JSON.stringify({ seq: r.seq, ts: r.ts, p: r.payload }))].join('\n') + '\n';
});
const validBatch = fc.tuple(stream, records).map(([s, rs]) => new Uint8Array(encodeBatch(s, rs, 'db1')));

t.test('valid batches decode to what was encoded', async (t) => {
  fc.assert(fc.property(stream, records, (s, rs) => {
    const b = decodeBatch(encodeBatch(s, rs, 'db1'));
    checkAccepted(b);
    if (JSON.stringify(b.records.map((r) => r.payload)) !== JSON.stringify(rs.map((r) => r.payload))) throw new Error('payloads differ');
  }), { numRuns: 300 });
  t.pass('300 round trips');
});

t.test('random bytes and gzip of random bytes', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => decodeOrRefuse(b)), { numRuns: RUNS });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => decodeOrRefuse(gzipSync(b))), { numRuns: RUNS });
  t.pass(`${2 * RUNS} inputs`);
});

t.test('mutated compressed batches', async (t) => {
  fc.assert(fc.property(mutated(validBatch), (b) => decodeOrRefuse(b)), { numRuns: RUNS * 2 });
  t.pass(`${2 * RUNS} mutated batches`);
});

t.test('well-compressed but mutated JSON Lines', async (t) => {
  fc.assert(fc.property(mutatedText(batchText), (text) => decodeOrRefuse(gzipSync(text))), { numRuns: RUNS * 2 });
  t.pass(`${2 * RUNS} mutated texts`);
});

t.test('a gzip bomb is refused, not inflated', async (t) => {
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
  t.ok(bomb.length < 128 * 1024, `64 MiB of spaces compress to ${bomb.length} bytes`);
  t.match(refusalOf(() => decodeBatch(bomb, { maxBytes: MAX }), CODES), { message: /more than 262144 bytes/ });
});

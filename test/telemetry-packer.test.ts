// The packer decides what goes into the next telemetry message of a stream, as a pure
// function of (rows, message limit, budget). Only a record whose message alone is larger
// than the message limit is poison; the budget (records the drain's rate allows, bytes the
// stream's send budget allows) only decides how much goes now (issue 17).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { decodeBatch } from '../protocol/telemetry-batch.js';
import { packMessage, type PackBudget, type PackRow } from '../agent/telemetry/packer.js';

t.setTimeout(60_000);

const TS = 1_764_355_200_000;
const row = (seq: number, payload: unknown): PackRow => {
  const json = JSON.stringify(payload);
  return { seq, ts: TS + seq, bytes: Buffer.byteLength(json), json };
};
/** A small, compressible record. */
const small = (seq: number): PackRow => row(seq, { seq, cpu: 0.5, kind: 'tick' });
/** A record of `bytes` base64 characters of random data: gzip cannot shrink it below ~3/4. */
const blob = (seq: number, bytes: number): PackRow => row(seq, randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').slice(0, bytes));
/** A record of `bytes` repeated characters: gzip shrinks it to almost nothing. */
const text = (seq: number, bytes: number): PackRow => row(seq, 'x'.repeat(bytes));
const smalls = (from: number, n: number): PackRow[] => Array.from({ length: n }, (_, i) => small(from + i));

const UNLIMITED: PackBudget = { records: Infinity, bytes: Infinity, bytesFull: true };
const KiB = 1024;

interface Case {
  name: string;
  rows: PackRow[];
  limit: number;
  budget: PackBudget;
  ratio?: number;
  /** Seqs in the message, in order ('all non-poison' is spelled out). */
  send: number[];
  poison: number[];
}

const cases: Case[] = [
  {
    name: 'issue 17: a 3 KB incompressible record after a backlog, the rate allows one record: it goes alone, not quarantined',
    rows: [blob(41, 4000), ...smalls(42, 5)], limit: 256 * KiB, budget: { ...UNLIMITED, records: 1 },
    send: [41], poison: [],
  },
  {
    name: 'the rate allows three records: three go, whatever their size',
    rows: [small(1), blob(2, 3000), small(3), small(4)], limit: 256 * KiB, budget: { ...UNLIMITED, records: 3 },
    send: [1, 2, 3], poison: [],
  },
  {
    name: 'the rate allows no record now: nothing goes, nothing is poison',
    rows: [blob(1, 8000), small(2)], limit: 1 * KiB, budget: { ...UNLIMITED, records: 0 },
    send: [], poison: [],
  },
  {
    name: 'a record that alone cannot fit the message limit after encoding is poison; the stream goes on behind it',
    rows: [blob(1, 8000), small(2), small(3)], limit: 4 * KiB, budget: UNLIMITED,
    send: [2, 3], poison: [1],
  },
  {
    name: 'poison in the middle of the stream: set aside, the records around it go',
    rows: [small(1), blob(2, 8000), small(3)], limit: 4 * KiB, budget: UNLIMITED,
    send: [1, 3], poison: [2],
  },
  {
    name: 'a record larger than the limit before encoding that compresses to fit is not poison: it goes alone',
    rows: [text(1, 6000), small(2)], limit: 2 * KiB, budget: UNLIMITED,
    send: [1], poison: [],
  },
  {
    name: 'a base64 record larger than the limit before encoding that fits after it: not poison, it goes alone',
    rows: [blob(1, 9000), small(2)], limit: 8 * KiB, budget: UNLIMITED,
    send: [1], poison: [],
  },
  {
    name: 'a record larger than the send budget while the bucket refills: it waits, not poison',
    rows: [blob(1, 3000), small(2)], limit: 256 * KiB, budget: { records: Infinity, bytes: 500, bytesFull: false },
    send: [], poison: [],
  },
  {
    name: 'a record larger than the send budget when the bucket is as full as it gets: it goes alone',
    rows: [blob(1, 3000), small(2)], limit: 256 * KiB, budget: { records: Infinity, bytes: 500, bytesFull: true },
    send: [1], poison: [],
  },
  {
    name: 'an empty send budget: nothing goes',
    rows: [small(1)], limit: 256 * KiB, budget: { records: Infinity, bytes: 0, bytesFull: false },
    send: [], poison: [],
  },
  {
    name: 'small records within both budgets: all of them in one message',
    rows: smalls(1, 50), limit: 256 * KiB, budget: { records: 100, bytes: Infinity, bytesFull: true },
    send: smalls(1, 50).map((r) => r.seq), poison: [],
  },
  {
    name: 'a stale compression estimate (16x) with incompressible records: cut down to fit the message limit',
    rows: Array.from({ length: 10 }, (_, i) => blob(i + 1, 1500)), limit: 4 * KiB, budget: UNLIMITED, ratio: 16,
    send: [1, 2, 3], poison: [], // 10 records halved to 5, then to 3
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const p = packMessage({ stream: 'samples', db: 'db1', rows: c.rows, messageLimit: c.limit, budget: c.budget, compressRatio: c.ratio ?? 1 });
    const sent = p.lines.map((l) => l.seq);
    const where = `limit ${c.limit}, budget ${JSON.stringify(c.budget, (_k, v) => (v === Infinity ? 'Infinity' : v))}, rows ${c.rows.map((r) => `${r.seq}:${r.bytes}B`).join(' ')}`;
    t.same(p.poison, c.poison, `poison ${JSON.stringify(p.poison)} (${where})`);
    t.same(sent, c.send, `sent ${JSON.stringify(sent)} (${where})`);
    if (c.send.length === 0) {
      t.equal(p.payload, undefined, 'no message');
      return;
    }
    t.ok(p.payload!.length <= c.limit, `the message is ${p.payload!.length} bytes, within the ${c.limit}-byte limit`);
    t.ok(sent.length <= c.budget.records, `at most ${c.budget.records} records`);
    const decoded = decodeBatch(p.payload!);
    t.same(decoded.records.map((r) => r.seq), sent, 'the message holds exactly the packed records');
    t.ok(p.compressRatio > 0, `compression ratio ${p.compressRatio.toFixed(2)} for the next message`);
  });
}

t.test('a record waiting for the send budget says how many bytes it needs', async (t) => {
  const p = packMessage({ stream: 'samples', db: 'db1', rows: [blob(1, 3000)], messageLimit: 256 * KiB, budget: { records: Infinity, bytes: 500, bytesFull: false }, compressRatio: 1 });
  t.ok(p.needBytes > 500, `needs ${p.needBytes} bytes, more than the 500 at hand`);
});

t.test('the rows are read only as far as needed', async (t) => {
  let read = 0;
  function* rows(): Generator<PackRow> {
    for (let seq = 1; ; seq++) {
      read++;
      yield small(seq);
    }
  }
  const p = packMessage({ stream: 'samples', db: 'db1', rows: rows(), messageLimit: 256 * KiB, budget: { ...UNLIMITED, records: 5 }, compressRatio: 1 });
  t.equal(p.lines.length, 5, 'five records packed');
  t.ok(read <= 6, `read ${read} rows of an endless stream`);
});

// npm run bench:telemetry — the telemetry buffer against the practical ceiling on this machine.
//
// 1. records/s through TelemetryBuffer.record() (group commit, synchronous=NORMAL, WAL),
//    beside the same rows inserted by a bare better-sqlite3 prepared statement in ONE big
//    transaction into the same table (same indexes, same pragmas). Ratio must be >= 0.5.
// 2. lease + ack throughput (records/s and messages/s, 64 KiB messages).
// 3. bytes on disk per record, and encoded bytes per record on the wire for the chosen
//    encoding (JSON Lines + gzip) beside MessagePack (msgpackr) with and without gzip.
// Runs are interleaved and repeated; the median is reported (the machine is shared).
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'msgpackr';
import { TelemetryBuffer } from '../agent/telemetry/buffer.js';
import { telemetryConfig } from '../agent/telemetry/defaults.js';
import { decodeBatch, encodeBatch } from '../protocol/telemetry-batch.js';

const N = Number(process.env.BENCH_RECORDS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MODELS = ['mnist-int8', 'ocr-det', 'kws-small'];

function payload(i: number): Record<string, unknown> {
  return {
    model: MODELS[i % 3],
    backend: i % 5 === 0 ? 'ort' : 'native',
    latencyMs: Math.round((2 + ((i * 7919) % 1000) / 250) * 1000) / 1000,
    batch: 1 + (i % 4),
    cls: i % 10,
    confidence: Math.round((0.5 + ((i * 104729) % 500) / 1000) * 10000) / 10000,
  };
}
const payloads = Array.from({ length: N }, (_, i) => payload(i));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function freshDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'bench-telemetry-'));
}

/** The ceiling: one prepared INSERT, one transaction, the buffer's own schema and pragmas. */
function bare(dir: string): number {
  // Let the buffer create the file (schema, WAL), then write to it directly.
  const b = new TelemetryBuffer({ dir, config: telemetryConfig({ maxBytes: 1 << 30 }) });
  b.startSync();
  b.stopSync();
  const db = new Database(path.join(dir, 'telemetry.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare('INSERT INTO records (seq, stream, priority, ts, expires, bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const t0 = process.hrtime.bigint();
  db.transaction(() => {
    for (let i = 0; i < N; i++) {
      const json = JSON.stringify(payloads[i]);
      insert.run(i + 1, 'metrics', 3, Date.now(), null, Buffer.byteLength(json), json);
    }
  })();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  db.close();
  return N / secs;
}

function viaRecord(dir: string): { rate: number; buffer: TelemetryBuffer } {
  const b = new TelemetryBuffer({ dir, config: telemetryConfig({ maxBytes: 1 << 30 }) });
  b.startSync();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) b.record('metrics', payloads[i]);
  b.flushSync();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: N / secs, buffer: b };
}

/** record() with synchronous=full: one fsync per group commit. */
function viaRecordFull(dir: string, n: number): number {
  const b = new TelemetryBuffer({ dir, config: telemetryConfig({ maxBytes: 1 << 30, synchronous: 'full' }) });
  b.startSync();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) b.record('metrics', payloads[i]);
  b.flushSync();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  b.stopSync();
  return n / secs;
}

function leaseAck(b: TelemetryBuffer): { recordsPerSec: number; msgsPerSec: number; wireBytes: number; count: number } {
  let count = 0;
  let msgs = 0;
  let wireBytes = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    const l = b.lease(64 * 1024);
    if (!l) break;
    count += l.count;
    msgs++;
    wireBytes += l.payload.length;
    b.ack(l.id);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { recordsPerSec: count / secs, msgsPerSec: msgs / secs, wireBytes, count };
}

const recordRates: number[] = [];
const fullRates: number[] = [];
const bareRates: number[] = [];
const leaseRates: number[] = [];
const msgRates: number[] = [];
let diskPerRecord = 0;
let wirePerRecord = 0;
for (let r = 0; r < ROUNDS; r++) {
  const d1 = freshDir();
  const d2 = freshDir();
  try {
    bareRates.push(bare(d1));
    const { rate, buffer } = viaRecord(d2);
    recordRates.push(rate);
    buffer.stopSync(); // checkpoint: the file alone holds the records
    const fileBytes = statSync(path.join(d2, 'telemetry.db')).size;
    diskPerRecord = fileBytes / N;
    buffer.startSync();
    const la = leaseAck(buffer);
    if (la.count !== N) throw new Error(`lease+ack delivered ${la.count} of ${N} records`);
    leaseRates.push(la.recordsPerSec);
    msgRates.push(la.msgsPerSec);
    wirePerRecord = la.wireBytes / N;
    buffer.stopSync();
    const d3 = freshDir();
    try {
      fullRates.push(viaRecordFull(d3, Math.min(N, 50_000)));
    } finally {
      rmSync(d3, { recursive: true, force: true });
    }
  } finally {
    rmSync(d1, { recursive: true, force: true });
    rmSync(d2, { recursive: true, force: true });
  }
}

// Wire encodings of the same 64 KiB-message-sized batch (records as the controller sees them).
const sample = payloads.slice(0, 2000).map((p, i) => ({ seq: 1_000_000 + i, ts: 1_764_355_200_000 + i * 37, payload: p }));
const jsonlGz = encodeBatch('metrics', sample, 'bench');
if (decodeBatch(jsonlGz).count !== sample.length) throw new Error('JSONL batch does not round-trip');
const mp = pack({ v: 1, stream: 'metrics', records: sample.map((r) => ({ seq: r.seq, ts: r.ts, p: r.payload })) });
const mpGz = gzipSync(mp, { level: 6 });
const rawJson = sample.reduce((a, r) => a + JSON.stringify(r.payload).length, 0);

const rec = median(recordRates);
const ref = median(bareRates);
const ratio = rec / ref;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`telemetry benchmark: ${N} records x ${ROUNDS} rounds (median), node ${process.version}, better-sqlite3 WAL synchronous=NORMAL`);
console.log(`record() with group commit (512/5 ms)     ${fmt(rec).padStart(12)} records/s`);
console.log(`bare prepared INSERT, one transaction     ${fmt(ref).padStart(12)} records/s  (reference)`);
console.log(`ratio record()/bare                       ${ratio.toFixed(2).padStart(12)}      (required >= 0.50: ${ratio >= 0.5 ? 'PASS' : 'FAIL'})`);
console.log(`record() with synchronous=FULL             ${fmt(median(fullRates)).padStart(12)} records/s  (one fsync per group commit)`);
console.log(`lease(64 KiB)+ack                         ${fmt(median(leaseRates)).padStart(12)} records/s  (${fmt(median(msgRates))} messages/s)`);
console.log(`bytes on disk per record                  ${diskPerRecord.toFixed(1).padStart(12)}      (payload JSON ${(rawJson / sample.length).toFixed(1)} bytes)`);
console.log(`wire bytes per record, JSONL+gzip (used)  ${wirePerRecord.toFixed(1).padStart(12)}      (leases of 64 KiB)`);
console.log(`wire bytes per record, 2000-record batch:  JSONL+gzip ${(jsonlGz.length / sample.length).toFixed(1)}, MessagePack ${(mp.length / sample.length).toFixed(1)}, MessagePack+gzip ${(mpGz.length / sample.length).toFixed(1)}`);
if (ratio < 0.5) process.exitCode = 1;

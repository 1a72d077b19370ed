// The wire encoding of one telemetry message: JSON Lines, gzip-compressed (RFC 1952).
//
//   line 1:  {"v":1,"stream":"metrics","db":"<buffer id>","count":3,"first":41,"last":43}
//   line 2+: {"seq":41,"ts":1764355200000,"p":<the payload given to record()>}
//
// Why JSON Lines + gzip and not MessagePack: the buffer stores each payload as JSON text, so a
// lease builds its message by concatenating stored text (no decode/re-encode per record), and
// telemetry repeats the same keys in every record, which gzip removes and MessagePack does not
// (bench:telemetry prints bytes per record for both). It is also readable with `zcat`.
// The controller de-duplicates on (device, seq); `db` changes only when a corrupt database was
// replaced (sequence numbers still keep rising across that, see docs/telemetry.md).
import { gzipSync, gunzipSync, constants as zc } from 'node:zlib';
import { ProtocolErrors, type EdgeError } from './errors.js';

export const BATCH_VERSION = 1;
/** For the MQTT 5 content-type property. */
export const BATCH_CONTENT_TYPE = 'application/x-ndjson+gzip';

export interface BatchHeader {
  v: number;
  stream: string;
  /** Id of the buffer database that produced the batch. */
  db: string;
  count: number;
  first: number;
  last: number;
}

export interface BatchRecord {
  seq: number;
  ts: number;
  payload: unknown;
}

export interface DecodedBatch extends BatchHeader {
  records: (BatchRecord & { stream: string })[];
}

/** One record line with its payload already as JSON text (the buffer's fast path). */
export interface RawLine {
  seq: number;
  ts: number;
  json: string;
}

const GZIP_LEVEL = 6;

export function batchError(message: string): EdgeError {
  return ProtocolErrors.TELEMETRY_BATCH_INVALID(message);
}

/** Encodes records whose payloads are JSON text already. */
export function encodeRawBatch(stream: string, db: string, lines: RawLine[]): Buffer {
  if (lines.length === 0) throw batchError('a batch needs at least one record');
  const header: BatchHeader = { v: BATCH_VERSION, stream, db, count: lines.length, first: lines[0].seq, last: lines[lines.length - 1].seq };
  let text = JSON.stringify(header) + '\n';
  for (const l of lines) text += `{"seq":${l.seq},"ts":${l.ts},"p":${l.json}}\n`;
  return gzipSync(text, { level: GZIP_LEVEL });
}

/** Encodes records (payloads are JSON-serialised here). */
export function encodeBatch(stream: string, records: BatchRecord[], db = ''): Buffer {
  return encodeRawBatch(stream, db, records.map((r) => {
    const json = JSON.stringify(r.payload);
    if (json === undefined) throw batchError(`record ${r.seq}: payload cannot be encoded as JSON`);
    return { seq: r.seq, ts: r.ts, json };
  }));
}

/** The size of one record line before compression (what leases are packed by). */
export function rawLineBytes(seq: number, ts: number, jsonBytes: number): number {
  // {"seq":,"ts":,"p":}\n is 20 bytes of framing.
  return 20 + String(seq).length + String(ts).length + jsonBytes;
}

/**
 * Decodes and checks a message. `maxBytes` caps the decompressed size (a gzip bomb is refused
 * before it is inflated).
 */
export function decodeBatch(buf: Uint8Array, opts: { maxBytes?: number } = {}): DecodedBatch {
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
  let text: string;
  try {
    text = gunzipSync(buf, { maxOutputLength: maxBytes, finishFlush: zc.Z_SYNC_FLUSH }).toString('utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE') throw batchError(`decompresses to more than ${maxBytes} bytes`);
    throw batchError(`expected gzip-compressed JSON Lines (${e.message})`);
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw batchError('empty message');
  let header: BatchHeader;
  try {
    header = JSON.parse(lines[0]) as BatchHeader;
  } catch {
    throw batchError('line 1 is not a JSON header');
  }
  if (typeof header !== 'object' || header === null) throw batchError('line 1 is not a JSON object');
  if (header.v !== BATCH_VERSION) throw batchError(`unsupported version ${JSON.stringify(header.v) ?? '(none)'} (expected ${BATCH_VERSION})`);
  if (typeof header.stream !== 'string' || !header.stream) throw batchError('header has no stream');
  if (!Number.isSafeInteger(header.count)) {
    throw batchError(`header "count" must be a whole number of records, got ${JSON.stringify(header.count) ?? 'nothing'}`);
  }
  if (header.count !== lines.length - 1) throw batchError(`header says ${header.count} records, message has ${lines.length - 1}`);
  const records: DecodedBatch['records'] = [];
  let prev = 0;
  for (let i = 1; i < lines.length; i++) {
    let r: { seq?: unknown; ts?: unknown; p?: unknown };
    try {
      r = JSON.parse(lines[i]) as typeof r;
    } catch {
      throw batchError(`line ${i + 1} is not JSON`);
    }
    if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.seq) || typeof r.ts !== 'number' || !('p' in r)) {
      throw batchError(`line ${i + 1}: expected {"seq":<integer>,"ts":<ms>,"p":<payload>}`);
    }
    const seq = r.seq as number;
    if (seq <= prev) throw batchError(`line ${i + 1}: sequence ${seq} is not above ${prev}`);
    prev = seq;
    records.push({ seq, stream: header.stream, ts: r.ts, payload: r.p });
  }
  if (records[0].seq !== header.first || records[records.length - 1].seq !== header.last) {
    throw batchError('header first/last do not match the records');
  }
  return { ...header, db: typeof header.db === 'string' ? header.db : '', records };
}

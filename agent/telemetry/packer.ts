// What goes into the next telemetry message of one stream: a pure decision over the head
// rows of the stream, the message limit and the budget of the moment. Two inputs that must
// never be confused (issue 17):
//   - the message limit (mqtt.batchMaxBytes, encoded bytes) is a hard bound: a record whose
//     message alone would exceed it can never be sent, and only such a record is poison;
//   - the budget (records the drain's rate allows now, encoded bytes the stream's send budget
//     allows now) only says how much to send now: a record larger than it waits, or goes
//     alone when the budget allows one record. It is never a reason to quarantine.
import { encodeRawBatch, rawLineBytes, type RawLine } from '../../protocol/telemetry-batch.js';

/** The framing of a batch message beyond its record lines (header line and gzip). */
const MESSAGE_SLACK = 256;

export interface PackRow {
  seq: number;
  ts: number;
  /** Bytes of the payload's JSON text. */
  bytes: number;
  json: string;
}

export interface PackBudget {
  /** Records the drain's rate allows in this message (Infinity: no rate limit). Below 1: nothing goes. */
  records: number;
  /** Encoded bytes the stream's send budget allows now (Infinity: unlimited). */
  bytes: number;
  /** The byte budget is as full as it gets, so waiting cannot make it larger: a record above it goes alone. */
  bytesFull: boolean;
}

export interface PackInput {
  stream: string;
  /** The buffer's database id (the batch header's "db"). */
  db: string;
  /** The head of the stream in sequence order; read lazily, only as far as needed. */
  rows: Iterable<PackRow>;
  /** Largest encoded message (mqtt.batchMaxBytes). */
  messageLimit: number;
  budget: PackBudget;
  /** Raw bytes per encoded byte of the stream's last message: how much raw text to pack. */
  compressRatio: number;
}

export interface Packing {
  /** The records of the message, in order; empty when nothing goes now. */
  lines: RawLine[];
  /** The encoded message of `lines` (at most messageLimit), or undefined when lines is empty. */
  payload: Buffer | undefined;
  /** Records that can never fit a message of messageLimit, whatever the budget. */
  poison: number[];
  /** When nothing goes: encoded bytes the head record needs from the byte budget (else 1). */
  needBytes: number;
  /** Raw bytes per encoded byte of this message (packs the next one); the input's when nothing goes. */
  compressRatio: number;
}

/** Raw line bytes below which a record's message surely fits the limit (gzip adds 5 bytes per 16 KB stored block). */
export function rawLineCap(stream: string, messageLimit: number): number {
  return messageLimit - MESSAGE_SLACK - stream.length - 5 * Math.ceil(messageLimit / 16_000);
}

export function packMessage(input: PackInput): Packing {
  const { stream, db, messageLimit, budget } = input;
  const nothing = (poison: number[], needBytes: number): Packing => ({ lines: [], payload: undefined, poison, needBytes, compressRatio: input.compressRatio });
  if (!(budget.records >= 1) || !(budget.bytes > 0)) return nothing([], 1);
  const sizeCap = rawLineCap(stream, messageLimit);
  // Packed by raw size, scaled by how well the stream's last message compressed (with a
  // safety margin); an overshoot is cut down after encoding.
  const ratio = Math.max(1, Math.min(16, input.compressRatio * 0.85));
  const cap = Math.min(sizeCap, budget.bytes) * ratio;
  const lines: RawLine[] = [];
  const poison: number[] = [];
  let size = 0;
  let headLine = 0;
  for (const row of input.rows) {
    const line = rawLineBytes(row.seq, row.ts, row.bytes);
    const raw: RawLine = { seq: row.seq, ts: row.ts, json: row.json };
    if (line > sizeCap && encodeRawBatch(stream, db, [raw]).length > messageLimit) {
      // Alone it is larger than any message may be: set it aside rather than block the stream.
      poison.push(row.seq);
      continue;
    }
    headLine ||= line;
    if (lines.length >= budget.records) break;
    if (size + line > cap) {
      // The first record goes alone when the byte budget is not what holds it back (it is
      // only larger than a message packs by estimate) or when waiting cannot raise the budget.
      if (lines.length === 0 && (budget.bytes >= sizeCap || budget.bytesFull)) {
        lines.push(raw);
        size += line;
      }
      break;
    }
    lines.push(raw);
    size += line;
  }
  if (lines.length === 0) return nothing(poison, headLine > 0 ? Math.ceil(headLine / ratio) : 1);
  let payload = encodeRawBatch(stream, db, lines);
  // Should gzip do worse than the last message, send fewer records rather than an oversized message.
  const packed = lines.length;
  while (payload.length > messageLimit && lines.length > 1) {
    lines.length = Math.ceil(lines.length / 2);
    payload = encodeRawBatch(stream, db, lines);
  }
  return { lines, payload, poison, needBytes: 1, compressRatio: (size * (lines.length / packed)) / payload.length };
}

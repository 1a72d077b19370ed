// What record() refuses as invalid, decided before anything is stored: the stream name, the
// payload (JSON, its size against the record limit and, alone in a message, against the
// message limit) and the options.
import { describe } from '../errors.js';
import { encodeRawBatch, rawLineBytes } from '../../protocol/telemetry-batch.js';
import { STREAM_NAME } from '../../protocol/names.js';
import { rawLineCap } from './packer.js';
import type { StreamPolicy } from './policy.js';
import type { RecordOptions } from './types.js';

/** A record that passed record()'s checks, not yet given a sequence number. */
export interface Checked {
  json: string;
  bytes: number;
  priority: number;
  opts: RecordOptions;
}

export interface RecordLimits {
  /** Largest payload, in bytes of its JSON text. */
  maxRecordBytes: number;
  /** Largest encoded message the link sends (mqtt.batchMaxBytes); undefined: not checked. */
  messageLimit: number | undefined;
  /** The database id (the batch header's "db"), which the encoded size includes. */
  db: string;
}

/** The record checked, or the problem in words. A record without a priority takes its stream's policy's. */
export function checkRecord(
  stream: string, payload: unknown, opts: RecordOptions, limits: RecordLimits, policies: { policy(stream: string): StreamPolicy },
): Checked | string {
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) {
    return `stream ${JSON.stringify(stream)} must match ${STREAM_NAME}`;
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (err) {
    return `payload of ${stream} cannot be encoded as JSON (${describe(err)})`;
  }
  if (json === undefined) return `payload of ${stream} must be a JSON value, got ${typeof payload}`;
  const bytes = Buffer.byteLength(json);
  const limit = limits.maxRecordBytes;
  if (bytes > limit) return `payload of ${stream} is ${bytes} bytes, the limit is ${limit}`;
  const messageLimit = limits.messageLimit;
  if (messageLimit !== undefined) {
    const encoded = aloneEncodedBytes(stream, limits.db, json, bytes, messageLimit);
    if (encoded > messageLimit) {
      return `payload of ${stream} does not fit a telemetry message even alone: ${encoded} bytes encoded, mqtt.batchMaxBytes is ${messageLimit}`;
    }
  }
  const priority = opts.priority ?? policies.policy(stream).priority;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) return `priority must be an integer 0..9, got ${String(opts.priority)}`;
  if (opts.ttlSeconds !== undefined && !(typeof opts.ttlSeconds === 'number' && opts.ttlSeconds > 0)) {
    return `ttlSeconds must be a positive number, got ${String(opts.ttlSeconds)}`;
  }
  if (opts.durable !== undefined && opts.durable !== 'normal' && opts.durable !== 'full') {
    return `durable must be "normal" or "full", got ${String(opts.durable)}`;
  }
  return { json, bytes, priority, opts };
}

/**
 * The encoded size of a message holding only this record (with the longest sequence number),
 * or 0 when its raw size alone shows that it fits: gzip runs only for records near the limit.
 */
function aloneEncodedBytes(stream: string, db: string, json: string, bytes: number, messageLimit: number): number {
  const now = Date.now();
  if (rawLineBytes(Number.MAX_SAFE_INTEGER, now, bytes) <= rawLineCap(stream, messageLimit)) return 0;
  return encodeRawBatch(stream, db, [{ seq: Number.MAX_SAFE_INTEGER, ts: now, json }]).length;
}

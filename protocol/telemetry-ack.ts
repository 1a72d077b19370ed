// The controller's end-to-end acknowledgement of a telemetry batch (docs/protocol.md,
// "Telemetry acknowledgements"): published on edge/v1/{d}/telemetry/{s}/ack after the
// batch's records are committed to the controller's database, for duplicates too. A PUBACK
// only says the broker took the message; this says the records are stored.
//
// An ack names exactly one message: `batch` is the sha256 of the message's bytes as published,
// with the stream, first, last and count of its header. The device deletes records only on an
// ack that matches an open batch in all of these; anyone can publish on an ack topic the
// broker's ACL leaves open, and an ack naming a range it never saw must not delete anything.
import { createHash } from 'node:crypto';

export const ACK_VERSION = 1;
/** An ack is a few numbers; anything larger is not one. */
export const MAX_ACK_BYTES = 4096;

export interface TelemetryAck {
  v: 1;
  stream: string;
  /** sha256 (hex) of the telemetry message acked, exactly as it was received. */
  batch: string;
  /** Sequence numbers of the batch's first and last record (inclusive). */
  first: number;
  last: number;
  /** Records in the batch, and how many of them were new or already stored. */
  count: number;
  stored: number;
  duplicates: number;
}

/** The id of a telemetry message, as both ends compute it: the sha256 of its bytes. */
export function batchId(message: Uint8Array): string {
  return createHash('sha256').update(message).digest('hex');
}

export function encodeAck(a: Omit<TelemetryAck, 'v'>): Buffer {
  const doc: TelemetryAck = { v: ACK_VERSION, stream: a.stream, batch: a.batch, first: a.first, last: a.last, count: a.count, stored: a.stored, duplicates: a.duplicates };
  return Buffer.from(JSON.stringify(doc));
}

/**
 * Checks an ack received on the topic of `topicStream`. Returns the ack, or a sentence
 * saying what is wrong with it (the caller logs it and drops the message).
 */
export function parseAck(payload: Buffer, topicStream: string): TelemetryAck | { problem: string } {
  if (payload.length > MAX_ACK_BYTES) return { problem: `ack of ${payload.length} bytes exceeds ${MAX_ACK_BYTES}` };
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return { problem: 'ack is not valid JSON' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { problem: 'ack is not a JSON object' };
  const a = doc as Record<string, unknown>;
  if (a.v !== ACK_VERSION) return { problem: `ack version ${JSON.stringify(a.v)} is not ${ACK_VERSION}` };
  if (a.stream !== topicStream) return { problem: `ack "stream" ${JSON.stringify(a.stream)} does not match the topic's stream "${topicStream}"` };
  if (typeof a.batch !== 'string' || !/^[0-9a-f]{64}$/.test(a.batch)) return { problem: `ack "batch" must be the sha256 (64 hex digits) of the message acked, got ${JSON.stringify(a.batch) ?? 'nothing'}` };
  const seq = (k: string): boolean => Number.isSafeInteger(a[k]) && (a[k] as number) >= 1;
  if (!seq('first') || !seq('last')) return { problem: `ack "first" and "last" must be positive integers, got ${JSON.stringify(a.first)} and ${JSON.stringify(a.last)}` };
  const first = a.first as number;
  const last = a.last as number;
  if (first > last) return { problem: `ack "first" ${first} is above "last" ${last}` };
  if (!seq('count') || (a.count as number) > last - first + 1) return { problem: `ack "count" must be 1..${last - first + 1}, got ${JSON.stringify(a.count)}` };
  const n = (k: string): number => (Number.isSafeInteger(a[k]) && (a[k] as number) >= 0 ? a[k] as number : 0);
  return { v: ACK_VERSION, stream: topicStream, batch: a.batch, first, last, count: a.count as number, stored: n('stored'), duplicates: n('duplicates') };
}

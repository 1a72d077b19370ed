// Binary frames for artifact chunks: uint32 big-endian header length, a UTF-8 JSON header,
// then the raw bytes. One frame per MQTT message, so chunks cost no base64.
export interface Frame<H> {
  header: H;
  body: Buffer;
}

export function encodeFrame(header: object, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length, 0);
  return Buffer.concat([len, h, body]);
}

/** Throws an Error naming what is wrong when the bytes are not a frame. */
export function decodeFrame<H = Record<string, unknown>>(buf: Buffer): Frame<H> {
  if (buf.length < 4) throw new Error(`frame of ${buf.length} bytes is shorter than its 4-byte length prefix`);
  const n = buf.readUInt32BE(0);
  if (n > buf.length - 4) throw new Error(`frame header length ${n} exceeds the ${buf.length - 4} bytes that follow`);
  const header = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as unknown;
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('frame header is not a JSON object');
  return { header: header as H, body: buf.subarray(4 + n) };
}

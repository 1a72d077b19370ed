// Typed arrays inside JSON: little-endian bytes in base64. Reports travel as JSON over MQTT,
// so a profile stays a JSON value, but its numbers cost 4/3 bytes per byte instead of ~18.

export function f64ToB64(a: Float64Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function f32ToB64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function u32ToB64(a: Uint32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

function bytes(s: unknown, width: number, what: string): Buffer {
  if (typeof s !== 'string') throw new TypeError(`${what}: expected a base64 string`);
  const b = Buffer.from(s, 'base64');
  if (b.length % width !== 0) throw new TypeError(`${what}: ${b.length} bytes is not a whole number of ${width}-byte values`);
  // Copy: a Buffer may sit at an offset that is not aligned for the typed array.
  const out = Buffer.alloc(b.length);
  b.copy(out);
  return out;
}

export function b64ToF64(s: unknown, what: string): Float64Array {
  const b = bytes(s, 8, what);
  return new Float64Array(b.buffer, b.byteOffset, b.length / 8);
}

export function b64ToF32(s: unknown, what: string): Float32Array {
  const b = bytes(s, 4, what);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

export function b64ToU32(s: unknown, what: string): Uint32Array {
  const b = bytes(s, 4, what);
  return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
}

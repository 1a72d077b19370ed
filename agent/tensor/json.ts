// Tensors in JSON request bodies: nested arrays, a flat array with its shape, or a base64
// raw little-endian buffer with its shape (the fast path). The element type is the one the
// model declares; a body that says otherwise is refused, never converted silently.
import type { DType, IOSpec, Tensor, TensorData } from '../runtime/backend.js';
import { DTYPE_BYTES } from '../runtime/backend.js';
import { describeSpec, elementCount, formatShape } from './shape.js';

export class TensorInputError extends Error {}

const RANGES: Record<DType, [number, number] | undefined> = {
  float32: undefined, uint8: [0, 255], int8: [-128, 127], int32: [-2147483648, 2147483647], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

export function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'uint8': return new Uint8Array(n);
    case 'int8': return new Int8Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
  }
}

function nestedShape(v: unknown, spec: IOSpec): number[] {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    // Checked while descending: a deeply nested body must not cost a deep walk or a huge message.
    if (shape.length === spec.shape.length) {
      throw new TensorInputError(`input "${spec.name}": expected ${describeSpec(spec)}, got more than ${spec.shape.length} levels of nesting`);
    }
    shape.push(cur.length);
    if (cur.length === 0) break;
    cur = cur[0];
  }
  if (shape.length === 0) throw new TensorInputError(`input "${spec.name}": expected an array`);
  return shape;
}

function fill(name: string, spec: IOSpec, out: TensorData, values: unknown[], shape: number[]): void {
  let k = 0;
  const range = RANGES[spec.dtype];
  const put = (x: unknown): void => {
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      // JSON has no Infinity: a literal such as 1e400 parses to it (and would print as null).
      const got = typeof x === 'number' ? `${x} (a number beyond the float64 range, such as 1e400)` : JSON.stringify(x)?.slice(0, 40);
      throw new TensorInputError(`input "${name}": every element must be a finite number, got ${got} at element ${k}`);
    }
    if (range && (!Number.isInteger(x) || x < range[0] || x > range[1])) {
      throw new TensorInputError(`input "${name}": ${spec.dtype} elements must be whole numbers in [${range[0]}, ${range[1]}], got ${x} at element ${k}`);
    }
    if (out instanceof BigInt64Array) out[k++] = BigInt(x);
    else out[k++] = x;
  };
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) return put(v);
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new TensorInputError(`input "${name}": ragged nested array (expected ${shape[depth]} items at depth ${depth}, as the first row has; shape ${formatShape(shape)})`);
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(values, 0);
}

function parseShape(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || v.some((d) => !Number.isInteger(d) || d < 0)) throw new TensorInputError(`input "${name}": "shape" must be an array of whole numbers`);
  return v as number[];
}

/**
 * One tensor from its JSON form, in the element type of `spec`. Shapes are not checked
 * against the spec here (see shapeProblem); element counts and types are.
 */
export function tensorFromJson(spec: IOSpec, v: unknown, maxElements: number): Tensor {
  const name = spec.name;
  const hint = `send ${describeSpec(spec)} as nested arrays, {"shape": [...], "data": [...]} or {"shape": [...], "base64": "..."}`;
  if (Array.isArray(v)) {
    const shape = nestedShape(v, spec);
    if (shape.length !== spec.shape.length) throw new TensorInputError(`input "${name}": expected ${describeSpec(spec)}, got ${shape.length} levels of nesting (shape ${formatShape(shape)})`);
    const n = elementCount(shape);
    if (n > maxElements) throw new TensorInputError(`input "${name}": ${n} elements is more than the ${maxElements} allowed`);
    const data = allocate(spec.dtype, n);
    fill(name, spec, data, v, shape);
    return { dtype: spec.dtype, shape, data };
  }
  if (v === null || typeof v !== 'object') throw new TensorInputError(`input "${name}": ${hint}`);
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['shape', 'data', 'base64', 'dtype'].includes(k));
  if (unknown.length) throw new TensorInputError(`input "${name}": unknown key "${unknown[0]}"; ${hint}`);
  if (o.dtype !== undefined && o.dtype !== spec.dtype) throw new TensorInputError(`input "${name}": expected ${describeSpec(spec)}, got dtype ${JSON.stringify(o.dtype)}`);
  const shape = parseShape(o.shape, name);
  const n = elementCount(shape);
  if (n > maxElements) throw new TensorInputError(`input "${name}": ${n} elements is more than the ${maxElements} allowed`);
  if (o.data !== undefined && o.base64 !== undefined) throw new TensorInputError(`input "${name}": give "data" or "base64", not both`);
  if (Array.isArray(o.data)) {
    if (o.data.length !== n) throw new TensorInputError(`input "${name}": shape ${formatShape(shape)} holds ${n} values, "data" has ${o.data.length}`);
    const data = allocate(spec.dtype, n);
    fill(name, spec, data, o.data, [n]);
    return { dtype: spec.dtype, shape, data };
  }
  if (typeof o.base64 === 'string') return tensorFromBytes(spec, shape, Buffer.from(o.base64, 'base64'), '"base64" decodes to');
  throw new TensorInputError(`input "${name}": ${hint}`);
}

/**
 * One tensor from raw little-endian bytes in the element type of `spec` (the caller has
 * checked the element count against its limit). `source` words where the bytes came from.
 */
export function tensorFromBytes(spec: IOSpec, shape: number[], bytes: Uint8Array, source = 'got'): Tensor {
  const n = elementCount(shape);
  const want = n * DTYPE_BYTES[spec.dtype];
  if (bytes.length !== want) {
    throw new TensorInputError(`input "${spec.name}": shape ${formatShape(shape)} of ${spec.dtype} needs ${want} bytes (little-endian), ${source} ${bytes.length}`);
  }
  const data = allocate(spec.dtype, n);
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(bytes);
  if (data instanceof Float32Array) {
    for (let i = 0; i < n; i++) if (!Number.isFinite(data[i]!)) throw new TensorInputError(`input "${spec.name}": element ${i} is not a finite number`);
  }
  return { dtype: spec.dtype, shape, data };
}

/** A tensor as JSON: shape plus flat data (int64 as numbers when safe, else strings). */
export function tensorToJson(t: Tensor): { dtype: DType; shape: number[]; data: (number | string)[] } {
  const data = t.data instanceof BigInt64Array
    ? Array.from(t.data, (v) => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v.toString()))
    : Array.from(t.data as ArrayLike<number>);
  return { dtype: t.dtype, shape: [...t.shape], data };
}

// NumPy .npy files: the interchange format for calibration sets, evaluation data and
// reference tensors (what a Python workstation writes with numpy.save). Versions 1, 2
// and 3 of the header; little-endian f4/f8/u1/i1/i4/i8 in C order. Anything else is
// refused with a sentence that says what was expected, never misread.
import { readFileSync, writeFileSync } from 'node:fs';
import { EdgeError, Errors } from '../errors.js';

export type NpyDType = 'float32' | 'float64' | 'uint8' | 'int8' | 'int32' | 'int64';
export type NpyData = Float32Array | Float64Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDType;
  /** C-order dimensions; [] is a scalar (one element). */
  shape: number[];
  data: NpyData;
}

export class NpyFormatError extends EdgeError {
  constructor(message: string) {
    super(Errors.NPY_INVALID.code, message, Errors.NPY_INVALID.statusCode);
    this.name = 'NpyFormatError';
  }
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface Kind { dtype: NpyDType; bytes: number; make: (b: ArrayBuffer) => NpyData }
const KINDS: Record<string, Kind> = {
  f4: { dtype: 'float32', bytes: 4, make: (b) => new Float32Array(b) },
  f8: { dtype: 'float64', bytes: 8, make: (b) => new Float64Array(b) },
  u1: { dtype: 'uint8', bytes: 1, make: (b) => new Uint8Array(b) },
  i1: { dtype: 'int8', bytes: 1, make: (b) => new Int8Array(b) },
  i4: { dtype: 'int32', bytes: 4, make: (b) => new Int32Array(b) },
  i8: { dtype: 'int64', bytes: 8, make: (b) => new BigInt64Array(b) },
};
const DESCR: Record<NpyDType, string> = {
  float32: '<f4', float64: '<f8', uint8: '|u1', int8: '|i1', int32: '<i4', int64: '<i8',
};
const SUPPORTED = 'little-endian float32 (<f4), float64 (<f8), uint8 (|u1), int8 (|i1), int32 (<i4) or int64 (<i8)';

/** Parses the bytes of a .npy file; `what` names the file in error messages. */
export function parseNpy(bytes: Uint8Array, what = 'array'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new NpyFormatError(`${what} is not a NumPy .npy file (it does not start with the \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new NpyFormatError(`${what}: truncated .npy header`);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`${what}: unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new NpyFormatError(`${what}: truncated .npy header (${bytes.length} bytes, header claims ${dataStart})`);
  // v1/v2 headers are latin1, v3 is utf-8; the keys we read are ASCII either way.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descrM = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  if (!descrM) throw new NpyFormatError(`${what}: .npy header has no simple 'descr' (structured arrays are not supported; expected ${SUPPORTED})`);
  const descr = descrM[1];
  const order = descr[0];
  const kind = KINDS[descr.slice(1)];
  if (order === '>' || (order === '!')) {
    throw new NpyFormatError(`${what}: big-endian data ('${descr}') is not supported; expected ${SUPPORTED} (numpy: arr.astype(arr.dtype.newbyteorder('<')))`);
  }
  if (!kind || !['<', '|', '='].includes(order) || (order === '|' && kind.bytes > 1)) {
    throw new NpyFormatError(`${what}: unsupported dtype '${descr}'; expected ${SUPPORTED}`);
  }

  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  if (!fortranM) throw new NpyFormatError(`${what}: .npy header has no 'fortran_order'`);
  if (fortranM[1] === 'True') {
    throw new NpyFormatError(`${what}: Fortran-order arrays are not supported; save a C-order array (numpy: np.ascontiguousarray(arr))`);
  }

  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shapeM) throw new NpyFormatError(`${what}: .npy header has no 'shape' tuple`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const n = Number(s.replace(/L$/, ''));
    // A dimension is a whole number numpy could hold (2^53 at most here): 1e300 is not one.
    if (!Number.isSafeInteger(n) || n < 0) throw new NpyFormatError(`${what}: bad dimension '${s}' in .npy shape (expected a whole number from 0 to 2^53)`);
    return n;
  });

  const count = shape.reduce((a, b) => a * b, 1);
  // Huge dimensions beside a 0 would multiply to NaN (Infinity x 0): refuse any product a
  // safe integer cannot hold.
  if (!Number.isSafeInteger(count)) throw new NpyFormatError(`${what}: shape (${shape.join(', ')}) holds more elements than can be counted`);
  const need = count * kind.bytes;
  const have = bytes.length - dataStart;
  if (have < need) {
    throw new NpyFormatError(`${what}: truncated data: shape (${shape.join(', ')}) of ${descr} needs ${need} bytes, the file holds ${have}`);
  }
  // Copy into a fresh buffer: the data offset need not suit the element alignment.
  const copy = new ArrayBuffer(need);
  new Uint8Array(copy).set(bytes.subarray(dataStart, dataStart + need));
  return { dtype: kind.dtype, shape, data: kind.make(copy) };
}

/** Serializes an array as a version 1.0 .npy (2.0 when the header would not fit). */
export function formatNpy(arr: NpyArray): Uint8Array {
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (count !== arr.data.length) {
    throw new NpyFormatError(`shape (${arr.shape.join(', ')}) holds ${count} values, the data has ${arr.data.length}`);
  }
  const shapeText = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let dict = `{'descr': '${DESCR[arr.dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let prefix = 10;
  if (dict.length + 1 + prefix > 0xffff) prefix = 12;
  // Pad with spaces and end with \n so the data starts on a 64-byte boundary (as numpy does).
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  dict = dict + ' '.repeat(total - prefix - dict.length - 1) + '\n';
  const header = new TextEncoder().encode(dict);
  const body = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  const out = new Uint8Array(total + body.length);
  out.set(MAGIC, 0);
  out[6] = prefix === 10 ? 1 : 2;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (prefix === 10) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, prefix);
  out.set(body, total);
  return out;
}

export function readNpy(file: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new NpyFormatError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseNpy(bytes, file);
}

export function writeNpy(file: string, arr: NpyArray): void {
  writeFileSync(file, formatNpy(arr));
}

/** The values as float32 (calibration and evaluation feed float models). */
export function toFloat32(arr: NpyArray): Float32Array {
  if (arr.data instanceof Float32Array) return arr.data;
  const out = new Float32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(arr.data[i]);
  return out;
}

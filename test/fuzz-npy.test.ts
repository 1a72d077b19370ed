// Fuzzing the .npy reader: random bytes, mutated valid files and hostile headers. Every input
// is either read consistently (as many elements as the shape says) or refused with
// EDGE_NPY_INVALID and a sentence; nothing crashes, hangs or allocates what a header claims.
import t from 'tap';
import fc from 'fast-check';
import { formatNpy, parseNpy, type NpyArray, type NpyDType } from '../agent/tensor/npy.js';
import { RUNS, mutated, mutatedText, refusalOf } from './helpers/fuzz.js';

const CODES = ['EDGE_NPY_INVALID'];

function checkAccepted(a: NpyArray): void {
  const count = a.shape.reduce((x, y) => x * y, 1);
  if (a.data.length !== count) throw new Error(`accepted shape (${a.shape.join(',')}) but ${a.data.length} elements`);
}

function parseOrRefuse(bytes: Uint8Array): void {
  let out: NpyArray | undefined;
  refusalOf(() => { out = parseNpy(bytes, 'fuzz.npy'); }, CODES);
  if (out) checkAccepted(out);
}

const dtypes: NpyDType[] = ['float32', 'float64', 'uint8', 'int8', 'int32', 'int64'];
const validNpy: fc.Arbitrary<Uint8Array> = fc.tuple(fc.constantFrom(...dtypes), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }), fc.nat(255))
  .map(([dtype, shape, seed]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const make: Record<NpyDType, (n: number) => NpyArray['data']> = {
      float32: (k) => Float32Array.from({ length: k }, (_, i) => i * 0.5 - seed),
      float64: (k) => Float64Array.from({ length: k }, (_, i) => i / 3 + seed),
      uint8: (k) => Uint8Array.from({ length: k }, (_, i) => (i + seed) & 0xff),
      int8: (k) => Int8Array.from({ length: k }, (_, i) => ((i + seed) & 0xff) - 128),
      int32: (k) => Int32Array.from({ length: k }, (_, i) => i * seed - 7),
      int64: (k) => BigInt64Array.from({ length: k }, (_, i) => BigInt(i - seed)),
    };
    return formatNpy({ dtype, shape, data: make[dtype](n) });
  });

t.test('valid files round-trip (the generator is sound)', async (t) => {
  fc.assert(fc.property(validNpy, (b) => { checkAccepted(parseNpy(b)); }), { numRuns: 300 });
  t.pass('300 valid files read back');
});

t.test('random bytes, with and without the magic', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => parseOrRefuse(b)), { numRuns: RUNS });
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  fc.assert(fc.property(fc.constantFrom(1, 2, 3, 0, 4, 255), fc.uint8Array({ maxLength: 512 }), (v, rest) =>
    parseOrRefuse(Uint8Array.from([...magic, v, 0, ...rest]))), { numRuns: RUNS });
  t.pass(`${2 * RUNS} random inputs: accepted consistently or refused with ${CODES[0]}`);
});

t.test('mutated valid files', async (t) => {
  fc.assert(fc.property(mutated(validNpy), (b) => parseOrRefuse(b)), { numRuns: RUNS * 2 });
  t.pass(`${2 * RUNS} mutated files`);
});

t.test('hostile headers: huge shapes, odd dtypes, broken dicts', async (t) => {
  const dictArb = mutatedText(fc.tuple(
    fc.constantFrom('<f4', '<f8', '|u1', '|i1', '<i4', '<i8', '>f4', '<f2', '|b1', '<U10', 'O', '', '<c8'),
    fc.array(fc.oneof(fc.nat(10), fc.constantFrom(2 ** 31, 2 ** 53, 1e300, -1)), { maxLength: 6 }),
    fc.boolean(),
  ).map(([d, shape, f]) => `{'descr': '${d}', 'fortran_order': ${f ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`));
  const file = fc.tuple(dictArb, fc.constantFrom(1, 2, 3), fc.uint8Array({ maxLength: 64 })).map(([dict, v, body]) => {
    const h = new TextEncoder().encode(dict + '\n');
    const pre = v === 1 ? 10 : 12;
    const out = new Uint8Array(pre + h.length + body.length);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, v, 0]);
    const view = new DataView(out.buffer);
    if (v === 1) view.setUint16(8, Math.min(h.length, 0xffff), true); else view.setUint32(8, h.length, true);
    out.set(h, pre);
    out.set(body, pre + h.length);
    return out;
  });
  fc.assert(fc.property(file, (b) => parseOrRefuse(b)), { numRuns: RUNS * 2 });
  // A header that claims 2^60 elements is refused before any allocation.
  const huge = new TextEncoder().encode(`{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824, 1073741824), }\n`);
  const b = new Uint8Array(10 + huge.length);
  b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(b.buffer).setUint16(8, huge.length, true);
  b.set(huge, 10);
  t.match(refusalOf(() => parseNpy(b), CODES), { code: 'EDGE_NPY_INVALID', message: /truncated data|more elements than can be counted/ });
});

t.test('regression (fuzz seed 1850652318): a huge dimension beside a 0 is refused, not read as 0 elements', async (t) => {
  const header = (shape: string) => {
    const h = new TextEncoder().encode(`{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }\n`);
    const b = new Uint8Array(10 + h.length);
    b.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(b.buffer).setUint16(8, h.length, true);
    b.set(h, 10);
    return b;
  };
  t.match(refusalOf(() => parseNpy(header('(2147483648, 1e+300, 0)')), CODES), { code: 'EDGE_NPY_INVALID', message: /bad dimension '1e\+300'.*whole number/ });
  t.match(refusalOf(() => parseNpy(header('(9007199254740992, 2, 0)')), CODES), { code: 'EDGE_NPY_INVALID', message: /bad dimension/ }, 'beyond 2^53');
  t.match(refusalOf(() => parseNpy(header(`(${Array(40).fill('9007199254740991').join(', ')}, 0)`)), CODES), { code: 'EDGE_NPY_INVALID', message: /more elements than can be counted/ }, 'a product that overflows to Infinity x 0');
  t.same(parseNpy(header('(3, 0)')).shape, [3, 0], 'an ordinary empty array still reads');
});


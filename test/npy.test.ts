import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { formatNpy, parseNpy, readNpy, writeNpy, type NpyArray } from '../agent/tensor/npy.js';

// Fixtures were written by numpy 2.x (numpy.lib.format.write_array) so the reader is checked
// against the real writer, not against our own idea of the format.
const dir = fileURLToPath(new URL('./fixtures/npy/', import.meta.url));
const fixture = (name: string) => join(dir, name);

t.test('reads arrays numpy wrote, header versions 1, 2 and 3', async (t) => {
  const f4 = readNpy(fixture('f4-v1.npy'));
  t.equal(f4.dtype, 'float32');
  t.same(f4.shape, [2, 3]);
  t.same(Array.from(f4.data as Float32Array), [-1, -0.5, 0, 0.5, 1, 1.5]);

  const f8 = readNpy(fixture('f8-v2.npy'));
  t.equal(f8.dtype, 'float64');
  t.same(f8.shape, [3]);
  t.same(Array.from(f8.data as Float64Array), [1.5, -2.25, 1e300]);

  const i8 = readNpy(fixture('i8-v3.npy'));
  t.equal(i8.dtype, 'int64');
  t.same(i8.shape, [2, 2]);
  t.same(Array.from(i8.data as BigInt64Array), [1n, -2n, 2n ** 40n, -(2n ** 62n)]);

  t.same(Array.from(readNpy(fixture('u1-v1.npy')).data as Uint8Array), [0, 7, 255]);
  t.same(Array.from(readNpy(fixture('i1-v1.npy')).data as Int8Array), [-128, 0, 127]);
  const i4 = readNpy(fixture('i4-v1.npy'));
  t.same(i4.shape, [2, 1, 1]);
  t.same(Array.from(i4.data as Int32Array), [-5, 70000]);
  const scalar = readNpy(fixture('scalar-f4.npy'));
  t.same(scalar.shape, []);
  t.same(Array.from(scalar.data as Float32Array), [3.25]);
});

t.test('what it writes reads back and matches numpy byte for byte', async (t) => {
  const numpyBytes = readFileSync(fixture('f4-v1.npy'));
  const ours = formatNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array([-1, -0.5, 0, 0.5, 1, 1.5]) });
  t.same(Buffer.from(ours), numpyBytes, 'same bytes as numpy.save for a v1 float32 array');
  t.same(Buffer.from(formatNpy({ dtype: 'uint8', shape: [3], data: new Uint8Array([0, 7, 255]) })), readFileSync(fixture('u1-v1.npy')));

  const cases: NpyArray[] = [
    { dtype: 'float64', shape: [2, 2], data: new Float64Array([Math.PI, -0, 1e-300, 7]) },
    { dtype: 'int8', shape: [4], data: new Int8Array([-128, -1, 0, 127]) },
    { dtype: 'int32', shape: [1, 2, 1], data: new Int32Array([-2147483648, 2147483647]) },
    { dtype: 'int64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
    { dtype: 'float32', shape: [0, 5], data: new Float32Array(0) },
  ];
  for (const c of cases) {
    const back = parseNpy(formatNpy(c));
    t.equal(back.dtype, c.dtype);
    t.same(back.shape, c.shape);
    t.same(Array.from(back.data as ArrayLike<unknown>), Array.from(c.data as ArrayLike<unknown>), `${c.dtype} round-trips`);
  }
  const file = join(t.testdir(), 'x.npy');
  writeNpy(file, cases[0]);
  t.same(Array.from(readNpy(file).data as Float32Array), Array.from(cases[0].data as Float32Array));
  // A view into a larger buffer writes only its own elements.
  const big = new Float32Array([9, 1, 2, 9]);
  t.same(Array.from(parseNpy(formatNpy({ dtype: 'float32', shape: [2], data: big.subarray(1, 3) })).data as Float32Array), [1, 2]);
});

t.test('refuses what it cannot read, saying what was expected', async (t) => {
  t.throws(() => readNpy(fixture('fortran-f4.npy')), { code: 'EDGE_NPY_INVALID', message: /Fortran-order/ });
  t.throws(() => readNpy(fixture('bigendian-f4.npy')), { code: 'EDGE_NPY_INVALID', message: /big-endian.*expected little-endian/ });
  t.throws(() => readNpy(fixture('bool.npy')), { code: 'EDGE_NPY_INVALID', message: /unsupported dtype '\|b1'/ });
  t.throws(() => parseNpy(new TextEncoder().encode('PK\x03\x04 a zip, not an array'), 'data.npz'), { message: /data.npz is not a NumPy .npy file/ });
  const good = readFileSync(fixture('f4-v1.npy'));
  t.throws(() => parseNpy(good.subarray(0, good.length - 3), 'cut.npy'), { message: /cut.npy: truncated data: shape \(2, 3\) of <f4 needs 24 bytes, the file holds 21/ });
  t.throws(() => parseNpy(good.subarray(0, 40), 'cut.npy'), { message: /truncated .npy header/ });
  const v9 = Uint8Array.from(good);
  v9[6] = 9;
  t.throws(() => parseNpy(v9, 'v9.npy'), { message: /unsupported .npy format version 9/ });
  t.throws(() => readNpy(join(dir, 'missing.npy')), { message: /cannot read .*missing.npy: ENOENT/ });
  t.throws(() => formatNpy({ dtype: 'float32', shape: [3], data: new Float32Array(2) }), /holds 3 values/);
});

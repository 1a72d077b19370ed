// The mse range method: the uint8 range whose rounding-plus-clipping error over the calibration
// data is smallest, measured on the data itself against minmax and percentile ranges; a reader's
// live interval (HardSwish is flat below -3) keeps the values it cannot tell apart from costing
// resolution; the graph's input keeps its extremes.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, decodeModel, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../agent/onnx/model.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { calibrate } from '../tools/compress/calibrate.js';
import { mseRange } from '../tools/compress/mse-range.js';
import { activationParams } from '../tools/compress/quant-math.js';
import { mulberry32 } from '../tools/prng.js';
import { scratchDir } from './helpers/edge-model-cli.js';

t.setTimeout(60_000);
const dir = scratchDir(t);

/** Mean squared error of uint8 quantization over [min, max] (as the quantizer stores it). */
function quantError(data: Float32Array, r: { min: number; max: number }, clampLo = -Infinity): number {
  const p = activationParams('x', r);
  let e = 0;
  for (const v of data) {
    const q = Math.min(255, Math.max(0, Math.round(v / p.scale) + p.zeroPoint));
    e += (Math.max(clampLo, v) - Math.max(clampLo, (q - p.zeroPoint) * p.scale)) ** 2;
  }
  return e / data.length;
}

function histogram(data: Float32Array, bins = 2048) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const h = new Float64Array(bins);
  const w = (max - min) / bins;
  for (const v of data) h[Math.min(bins - 1, Math.floor((v - min) / w))]++;
  return { h, min, max };
}

// Gaussian bulk with a sparse far tail (as a conv output): 1 value in 2000 is 20x larger.
const r = mulberry32(5);
const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
const data = Float32Array.from({ length: 60_000 }, (_, i) => (i % 2000 === 7 ? 20 + 10 * r() : gauss()));

t.test('mse picks a range with less error than minmax and percentile ranges', async (t) => {
  const { h, min, max } = histogram(data);
  const m = mseRange(h, min, max);
  t.ok(m.min <= 0 && m.max >= 0, 'the range holds 0');
  t.ok(m.max < max, `the sparse tail is clipped (max ${m.max.toFixed(2)} of ${max.toFixed(2)})`);
  const e = quantError(data, m);
  const sorted = Float32Array.from(data).sort();
  const pct = (q: number) => sorted[Math.floor(q * (sorted.length - 1))];
  for (const [name, rr] of [['minmax', { min, max }], ['percentile 99.99', { min: pct(0.00005), max: pct(0.99995) }], ['percentile 99', { min: pct(0.005), max: pct(0.995) }]] as const) {
    const other = quantError(data, rr);
    t.ok(e < other, `error ${e.toExponential(3)} < ${name}'s ${other.toExponential(3)}`);
  }
});

t.test('a live interval: values a HardSwish cannot tell apart cost no resolution', async (t) => {
  // Negative tail down to -30, flat below -3 for the reader.
  const d = Float32Array.from(data, (v, i) => (i % 3 === 0 ? -Math.abs(v) * 10 : Math.abs(v) * 2));
  const { h, min, max } = histogram(d);
  const free = mseRange(h, min, max);
  const live = mseRange(h, min, max, { lo: -3, hi: Infinity });
  t.ok(live.min >= -3.5 && live.min > free.min, `min ${live.min.toFixed(2)} (without the reader: ${free.min.toFixed(2)})`);
  t.ok(quantError(d, live, -3) < quantError(d, free, -3), 'less error as the reader sees it');
});

t.test('calibrate --method mse: ranges per tensor, the graph input at its extremes', async (t) => {
  const model = decodeModel(encodeModel(makeModel({
    name: 'id',
    node: [makeNode('Conv', ['x', 'w'], ['y'], { kernel_shape: [1, 1] }), makeNode('Relu', ['y'], ['z'])],
    initializer: [makeTensor('w', [1, 1, 1, 1], Float32Array.from([1]))],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 1, 100, 150])],
    output: [makeValueInfo('z', DataType.FLOAT, ['N', 1, 100, 150])],
  })));
  const calib = join(dir, 'calib');
  mkdirSync(calib);
  writeNpy(join(calib, 'a.npy'), { dtype: 'float32', shape: [4, 1, 100, 150], data });
  const { h, min, max } = histogram(data);
  const cal = await calibrate(model, ['x', 'y'], calib, { method: 'mse', extremes: new Set(['x']) });
  t.same(cal.ranges.get('x'), { min, max }, 'the input keeps its extremes');
  const y = cal.ranges.get('y')!;
  const want = mseRange(h, min, max);
  t.ok(Math.abs(y.max - want.max) < 1e-3 * max && Math.abs(y.min - want.min) < 1e-3 * max, `y: [${y.min.toFixed(3)}, ${y.max.toFixed(3)}] as mseRange gives`);
});

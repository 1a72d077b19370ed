// Issue 21 item 5, `edge-model eval` and `finetune --folds` with the installed bin, on
// constructed models whose answers are known in advance, every expected number computed here
// independently of the tool:
// - a 3-class identity model (its output is its input): the confusion matrix, the expected
//   calibration error and the reliability table of hand-made probability rows, per-slice
//   accuracy and macro-F1 and their largest gap; a slices file of the wrong length;
// - finetune --folds on 2-D points separable by the sign of x0 except for known flipped labels:
//   each fold's accuracy is exactly 1 - (flipped in the fold) / (fold size), folds recomputed here;
//   bad fold counts;
// - eval --saliency on an 8x8 image model whose decision depends only on the top-left 3x3
//   corner: a valid PNG of 8x8 whose hot pixels are in that corner; an out-of-range index.
import t from 'tap';
// Three small models, a dozen edge-model runs of well under a second of work each (plus the
// one-off build of dist/ when a source is newer): 2 minutes leaves room on a loaded machine.
t.setTimeout(180_000);
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../agent/onnx/model.js';
import { writeNpy } from '../agent/tensor/npy.js';
import { mulberry32 } from '../tools/prng.js';
import { edgeModel, ensureBuilt, scratchDir } from './helpers/edge-model-cli.js';

ensureBuilt();
const dir = scratchDir(t);

/** x (N x k) -> Gemm(W, b) -> y: the head finetune replaces; W = I gives the input back. */
function gemmModel(file: string, k: number, w: Float32Array, b: Float32Array, outK = k): void {
  const graph = {
    name: 'g',
    node: [makeNode('Gemm', ['x', 'W', 'b'], ['y'])],
    initializer: [makeTensor('W', [k, outK], w), makeTensor('b', [outK], b)],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', k])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', outK])],
  };
  writeFileSync(file, encodeModel(makeModel(graph)));
}
const identity = (k: number) => Float32Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0));

function run(args: string[]): { code: number | null; stdout: string; stderr: string; json?: any } {
  const r = edgeModel(args);
  return { ...r, json: r.code === 0 && args.includes('--json') ? JSON.parse(r.stdout) : undefined };
}

t.test('eval: confusion matrix, calibration and slices of known predictions', async (t) => {
  const model = join(dir, 'id3.onnx');
  gemmModel(model, 3, identity(3), new Float32Array(3));
  const rand = mulberry32(11);
  const n = 90;
  const rows: number[][] = [];
  const labels: number[] = [];
  const groups: string[] = [];
  for (let i = 0; i < n; i++) {
    // A probability row: a random top class with a random confidence in [0.34, 1).
    const top = Math.floor(rand() * 3);
    const p = 0.34 + 0.66 * rand();
    const row = [0, 0, 0].map((_, j) => (j === top ? p : (1 - p) / 2));
    rows.push(row.map((v) => Math.fround(v)));
    // Right 70% of the time, in group "a" more than in group "b".
    const g = i % 3 === 0 ? 'b' : 'a';
    labels.push(rand() < (g === 'a' ? 0.8 : 0.5) ? top : (top + 1 + Math.floor(rand() * 2)) % 3);
    groups.push(g);
  }
  const data = join(dir, 'probs');
  mkdirSync(data);
  writeNpy(join(data, 'a.npy'), { dtype: 'float32', shape: [n, 3], data: Float32Array.from(rows.flat()) });
  writeFileSync(join(dir, 'labels3.txt'), labels.join('\n') + '\n');
  writeFileSync(join(dir, 'slices.txt'), groups.join('\n') + '\n');
  const pred = rows.map((r) => r.indexOf(Math.max(...r)));

  // Expected, from the definitions.
  const confusion = [0, 1, 2].map((l) => [0, 1, 2].map((p) => pred.filter((q, i) => q === p && labels[i] === l).length));
  const bins = 5;
  let ece = 0;
  const table: { samples: number; confidence: number; accuracy: number }[] = [];
  for (let b = 0; b < bins; b++) {
    const inBin = rows.map((r, i) => i).filter((i) => Math.min(bins - 1, Math.floor(Math.max(...rows[i]!) * bins)) === b);
    if (!inBin.length) continue;
    const conf = inBin.reduce((s, i) => s + Math.max(...rows[i]!), 0) / inBin.length;
    const acc = inBin.filter((i) => pred[i] === labels[i]).length / inBin.length;
    table.push({ samples: inBin.length, confidence: conf, accuracy: acc });
    ece += (inBin.length / n) * Math.abs(acc - conf);
  }
  const macroF1 = (idx: number[]) => {
    const cls = new Set(idx.flatMap((i) => [labels[i]!, pred[i]!]));
    let f = 0;
    for (const c of cls) {
      const tp = idx.filter((i) => pred[i] === c && labels[i] === c).length;
      const fp = idx.filter((i) => pred[i] === c && labels[i] !== c).length;
      const fn = idx.filter((i) => pred[i] !== c && labels[i] === c).length;
      const pr = tp + fp ? tp / (tp + fp) : 0;
      const rc = tp + fn ? tp / (tp + fn) : 0;
      f += pr + rc ? (2 * pr * rc) / (pr + rc) : 0;
    }
    return f / cls.size;
  };
  const slice = (g: string) => {
    const idx = groups.map((_, i) => i).filter((i) => groups[i] === g);
    return { slice: g, samples: idx.length, accuracy: idx.filter((i) => pred[i] === labels[i]).length / idx.length, f1: macroF1(idx) };
  };
  const [a, b] = [slice('a'), slice('b')];

  const r = run(['eval', model, '--data', data, '--labels', join(dir, 'labels3.txt'), '--slices', join(dir, 'slices.txt'), '--bins', String(bins), '--json']);
  t.equal(r.code, 0, r.stderr);
  const e = r.json;
  t.same(e.confusion.rows, confusion, 'the confusion matrix');
  t.equal(e.confusion.rows.flat().reduce((s: number, v: number) => s + v, 0), n);
  t.ok(Math.abs(e.calibration.ece - ece) < 1e-6, `ECE ${e.calibration.ece} = ${ece} (${bins} bins)`);
  t.equal(e.calibration.bins, bins);
  t.equal(e.calibration.softmaxed, false, 'probability rows are taken as they are');
  const filled = e.calibration.table.filter((x: { samples: number }) => x.samples > 0);
  t.same(filled.map((x: { samples: number }) => x.samples), table.map((x) => x.samples), 'the reliability table: samples per bin');
  filled.forEach((x: { confidence: number; accuracy: number }, i: number) => {
    t.ok(Math.abs(x.confidence - table[i]!.confidence) < 1e-6 && Math.abs(x.accuracy - table[i]!.accuracy) < 1e-12, `bin ${i}: confidence and accuracy`);
  });
  t.equal(e.slices.slices.length, 2);
  for (const [got, want] of [[e.slices.slices[0], a], [e.slices.slices[1], b]]) {
    t.equal(got.slice, want.slice);
    t.equal(got.samples, want.samples);
    t.ok(Math.abs(got.accuracy - want.accuracy) < 1e-12 && Math.abs(got.f1 - want.f1) < 1e-12, `slice ${want.slice}: accuracy ${want.accuracy.toFixed(4)}, macro-F1 ${want.f1.toFixed(4)}`);
  }
  t.ok(Math.abs(e.slices.gap.accuracy - Math.abs(a.accuracy - b.accuracy)) < 1e-12, 'the largest accuracy gap');
  t.ok(Math.abs(e.slices.gap.f1 - Math.abs(a.f1 - b.f1)) < 1e-12, 'the largest macro-F1 gap');
  t.equal(e.slices.gap.worst, a.accuracy < b.accuracy ? 'a' : 'b');

  const text = run(['eval', model, '--data', data, '--labels', join(dir, 'labels3.txt'), '--slices', join(dir, 'slices.txt')]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /confusion matrix \(rows: true class, columns: predicted class\):/);
  t.match(text.stdout, /expected calibration error \d\.\d{4} over 10 equal-width bins/);
  t.match(text.stdout, /largest gap: accuracy \d\.\d{4}/);

  writeFileSync(join(dir, 'short.txt'), groups.slice(1).join('\n'));
  const short = run(['eval', model, '--data', data, '--labels', join(dir, 'labels3.txt'), '--slices', join(dir, 'short.txt')]);
  t.equal(short.code, 1);
  t.match(short.stderr, /short\.txt has 89 slice names, but the data folder holds 90 samples; expected one group name per sample/);
  const bad = run(['eval', model, '--data', data, '--labels', join(dir, 'labels3.txt'), '--bins', '0']);
  t.match(bad.stderr, /--bins 0: expected a whole number of calibration bins/);
});

t.test('finetune --folds: each fold scores exactly its share of unlearnable labels', async (t) => {
  const model = join(dir, 'id2.onnx');
  gemmModel(model, 2, identity(2), new Float32Array(2));
  const rand = mulberry32(5);
  const n = 60;
  const x: number[] = [];
  const labels: number[] = [];
  const flipped = new Set([3, 17, 28, 41, 55]);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    x.push((cls ? 1 : -1) * (1 + 2 * rand()), 2 * rand() - 1);
    labels.push(flipped.has(i) ? 1 - cls : cls);
  }
  const data = join(dir, 'points');
  mkdirSync(data);
  writeNpy(join(data, 'a.npy'), { dtype: 'float32', shape: [n, 2], data: Float32Array.from(x) });
  writeFileSync(join(dir, 'labels2.txt'), labels.join('\n') + '\n');
  // The folds as documented: a mulberry32(seed ^ 0x5eed) Fisher-Yates shuffle, position i in fold i mod K.
  const k = 4;
  const seed = 3;
  const idx = Array.from({ length: n }, (_, i) => i);
  const r0 = mulberry32(seed ^ 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r0() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  const folds = Array.from({ length: k }, (_, f) => idx.filter((_, i) => i % k === f));
  const expected = folds.map((f) => 1 - f.filter((s) => flipped.has(s)).length / f.length);
  const mean = expected.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(expected.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1));

  const out = join(dir, 'ft.onnx');
  const r = run(['finetune', model, out, '--data', data, '--labels', join(dir, 'labels2.txt'), '--folds', String(k), '--seed', String(seed), '--epochs', '60', '--lr', '0.1', '--patience', '0', '--batch', '16', '--json']);
  t.equal(r.code, 0, r.stderr);
  const cv = r.json.crossValidation;
  t.equal(cv.folds, k);
  t.same(cv.perFold.map((p: { samples: number }) => p.samples), folds.map((f) => f.length), 'fold sizes');
  const got = cv.perFold.map((p: { accuracy: number }) => p.accuracy) as number[];
  t.ok(got.every((v, i) => Math.abs(v - expected[i]!) < 1e-12), `per-fold accuracy ${got.map((v) => v.toFixed(4)).join(', ')} = ${expected.map((v) => v.toFixed(4)).join(', ')}`);
  t.ok(Math.abs(cv.mean - mean) < 1e-12 && Math.abs(cv.sd - sd) < 1e-12, `mean ${mean.toFixed(4)} ± sd ${sd.toFixed(4)}`);

  const text = run(['finetune', model, out, '--data', data, '--labels', join(dir, 'labels2.txt'), '--folds', '3', '--epochs', '5']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /3-fold cross-validation: fold 1 \d+\.\d\d% \(20\), fold 2/);
  t.match(text.stdout, /cross-validated accuracy: \d+\.\d\d% ± \d+\.\d\d% \(mean ± sd over the folds\)/);
  for (const bad of ['1', '61', 'two', '2.5']) {
    const b = run(['finetune', model, out, '--data', data, '--labels', join(dir, 'labels2.txt'), '--folds', bad, '--epochs', '1']);
    t.equal(b.code, 1, `--folds ${bad} is refused`);
    t.match(b.stderr, /--folds .*expected a whole number of folds in 2\.\.60/);
  }
});

/** A PNG's size and RGB pixels, its chunks' CRCs checked. */
function readPng(buf: Buffer): { width: number; height: number; rgb: Buffer } {
  if (!buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG signature');
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const v of b) c = crcTable[(c ^ v) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  for (;;) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const body = buf.subarray(off + 8, off + 8 + len);
    if (crc(buf.subarray(off + 4, off + 8 + len)) !== buf.readUInt32BE(off + 8 + len)) throw new Error(`bad CRC in ${type}`);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      if (body[8] !== 8 || body[9] !== 2) throw new Error('expected 8-bit RGB');
    } else if (type === 'IDAT') idat.push(body);
    off += 12 + len;
    if (type === 'IEND') break;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    if (raw[y * (1 + width * 3)] !== 0) throw new Error('this reader takes filter 0 only');
    raw.copy(rgb, y * width * 3, y * (1 + width * 3) + 1, (y + 1) * (1 + width * 3));
  }
  return { width, height, rgb };
}

t.test('eval --saliency: a PNG of the input\'s size, hot where the model looks', async (t) => {
  // 1x8x8 image -> Flatten -> Gemm: logit 0 = 5 x (sum of the top-left 3x3 pixels), logit 1 = 40.
  const side = 8;
  const w = new Float32Array(side * side * 2);
  for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) w[(y * side + x) * 2] = 5;
  const graph = {
    name: 'corner',
    node: [makeNode('Flatten', ['x'], ['f'], { axis: 1 }), makeNode('Gemm', ['f', 'W', 'b'], ['y'])],
    initializer: [makeTensor('W', [side * side, 2], w), makeTensor('b', [2], Float32Array.from([0, 40]))],
    input: [makeValueInfo('x', DataType.FLOAT, ['N', 1, side, side])],
    output: [makeValueInfo('y', DataType.FLOAT, ['N', 2])],
  };
  const model = join(dir, 'corner.onnx');
  writeFileSync(model, encodeModel(makeModel(graph)));
  const data = join(dir, 'images');
  mkdirSync(data);
  writeNpy(join(data, 'a.npy'), { dtype: 'float32', shape: [2, 1, side, side], data: new Float32Array(2 * side * side).fill(1) });
  const png = join(dir, 'saliency.png');
  const r = run(['eval', model, '--data', data, '--saliency', '1', '--out', png, '--patch', '2', '--stride', '1', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.predicted, 0, 'the intact image is class 0 (logit 45 against 40)');
  const img = readPng(readFileSync(png));
  t.same([img.width, img.height], [side, side], 'the PNG has the input\'s size');
  const heat = Array.from({ length: side * side }, (_, i) => img.rgb[i * 3]! + img.rgb[i * 3 + 1]! + img.rgb[i * 3 + 2]!);
  const hottest = heat.indexOf(Math.max(...heat));
  t.ok(Math.floor(hottest / side) < 3 && hottest % side < 3, `the hottest pixel (row ${Math.floor(hottest / side)}, column ${hottest % side}) is in the 3x3 corner`);
  const outside = heat.filter((_, i) => Math.floor(i / side) >= 4 || i % side >= 4);
  t.ok(outside.every((v) => v === 0), 'pixels no patch over the corner covers are black: occluding them changes nothing');
  t.ok(r.json.hottest.row < 3 && r.json.hottest.col < 3 && r.json.maxDrop > 0.5, `largest mean drop ${r.json.maxDrop.toFixed(3)}`);

  const text = run(['eval', model, '--data', data, '--saliency', '0', '--out', png]);
  t.match(text.stdout, /wrote .*saliency\.png \(8x8\): occlusion saliency of sample 0, predicted class 0/);
  const out = run(['eval', model, '--data', data, '--saliency', '2', '--out', png]);
  t.equal(out.code, 1);
  t.match(out.stderr, /--saliency 2: the data folder holds 2 samples; expected an index in 0\.\.1/);
  const noOut = run(['eval', model, '--data', data, '--saliency', '0']);
  t.match(noOut.stderr, /give --out FILE\.png/);
  const flat = run(['eval', join(dir, 'id2.onnx'), '--data', join(dir, 'points'), '--saliency', '0', '--out', png]);
  t.match(flat.stderr, /--saliency needs an image input/);
});

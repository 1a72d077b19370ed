// Rebuilds models/digits-int8 from models/digits-fp32 with the compression toolkit: the
// same steps a user runs with `edge-model` (quantize with a calibration folder, evaluate on the
// held-out digits, pack with the drift reference), so the shipped int8 sample is the tool's
// own output. Run: npx tsx scripts/build-digits-int8.ts
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNpy } from '../agent/tensor/npy.js';
import { evaluateModel } from '../tools/compress/evaluate.js';
import { packModel } from '../tools/compress/pack.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { DIGIT_PIXELS, heldOutDigits, trainingDigits } from '../tools/edge-model/digits.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const fp32Dir = join(root, 'models/digits-fp32');
const outDir = join(root, 'models/digits-int8');
/** Calibration images, from the training split only (the held-out set stays unseen). */
const CALIBRATION = 1000;

/** Writes the calibration and held-out folders the CLI would be given. */
export function writeDigitFolders(dir: string): { calib: string; held: string; labels: string } {
  const train = trainingDigits();
  const held = heldOutDigits();
  const calib = join(dir, 'calib');
  const heldDir = join(dir, 'heldout');
  const labels = join(dir, 'heldout-labels.npy');
  for (const d of [calib, heldDir]) {
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
  }
  // Ten files of 100 so progress and batching are exercised like a real folder.
  const per = 100;
  for (let f = 0; f < CALIBRATION / per; f++) {
    writeNpy(join(calib, `train-${String(f).padStart(2, '0')}.npy`), {
      dtype: 'float32', shape: [per, 1, 28, 28], data: train.images.slice(f * per * DIGIT_PIXELS, (f + 1) * per * DIGIT_PIXELS),
    });
  }
  writeNpy(join(heldDir, 'heldout.npy'), { dtype: 'float32', shape: [held.count, 1, 28, 28], data: held.images });
  writeNpy(labels, { dtype: 'uint8', shape: [held.count], data: held.labels });
  return { calib, held: heldDir, labels };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'digits-int8-'));
  try {
    const data = writeDigitFolders(work);
    const int8 = join(work, 'model.onnx');
    const q = await quantizeFile(join(fp32Dir, 'model.onnx'), int8, { calib: data.calib, perChannel: true, method: 'minmax', format: 'qdq' });
    const fp32Eval = await evaluateModel(join(fp32Dir, 'model.onnx'), data.held, data.labels, 'accuracy');
    const int8Eval = await evaluateModel(int8, data.held, data.labels, 'accuracy');
    rmSync(outDir, { recursive: true, force: true });
    const fp32Manifest = JSON.parse(readFileSync(join(fp32Dir, 'manifest.json'), 'utf8')) as { version: string };
    const pack = await packModel(int8, {
      name: 'digits', version: `${fp32Manifest.version}-int8`, out: outDir, template: join(fp32Dir, 'manifest.json'),
      calib: data.calib, data: data.held, labels: data.labels, metric: 'accuracy',
    });
    const size = (dir: string) => ['model.onnx', 'manifest.json'].reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    process.stdout.write(
      `digits int8: ${JSON.stringify(q.quantized)}; accuracy fp32 ${fp32Eval.value.toFixed(4)} int8 ${int8Eval.value.toFixed(4)} ` +
      `(${(100 * (int8Eval.value - fp32Eval.value)).toFixed(2)} points); model ${q.bytesBefore} -> ${q.bytesAfter} bytes; ` +
      `package ${size(fp32Dir)} -> ${size(outDir)} bytes; wrote ${pack.dir}\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

// Stands in for your exporter in docs/own-model.md: writes into the folder given a model as
// torch.onnx.export or tf2onnx would hand it over (the digits CNN, fp32, dynamic batch), and
// the data the guide uses: calib/ (training digits, for quantization), heldout/ + labels.npy
// (held-out digits, for evaluation and the drift reference), digit.npy (one image to infer).
// Usage: npm run example-model -- DIR
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeNpy } from '../agent/tensor/npy.js';
import { packageRoot } from '../agent/native.js';
import { DIGIT_PIXELS, heldOutDigits } from '../tools/edge-model/digits.js';
import { writeDigitFolders } from './build-digits-int8.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: npm run example-model -- DIR\n');
  process.exit(2);
}
const dir = resolve(out);
mkdirSync(dir, { recursive: true });
copyFileSync(join(packageRoot, 'models/digits-fp32/model.onnx'), join(dir, 'model.onnx'));
const data = writeDigitFolders(dir);
renameSync(data.labels, join(dir, 'labels.npy'));
const held = heldOutDigits();
writeNpy(join(dir, 'digit.npy'), { dtype: 'float32', shape: [1, 1, 28, 28], data: held.images.slice(0, DIGIT_PIXELS) });
process.stdout.write(`wrote ${dir}: model.onnx, calib/, heldout/, labels.npy, digit.npy (a ${held.labels[0]})\n`);

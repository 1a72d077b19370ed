// Page crops like those PaddleOCR's text detector sees: two upright text lines stacked into one
// 3 x 96 x 192 image (both sides multiples of 32, as the detector's feature pyramid needs),
// normalized as the text lines are. Seeded, so sets are repeatable.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../../agent/tensor/npy.js';
import { TEXT_H, TEXT_W, textImage } from './text-images.js';

export const PAGE_H = 2 * TEXT_H;
export const PAGE_W = TEXT_W;

/** One page: the text lines of two even (upright) seeds, one above the other. */
export function pageImage(seed: number): Float32Array {
  const lines = [textImage(2 * seed), textImage(2 * seed + 2)];
  const out = new Float32Array(3 * PAGE_H * PAGE_W);
  const plane = TEXT_H * TEXT_W;
  for (let c = 0; c < 3; c++) {
    for (let l = 0; l < 2; l++) out.set(lines[l].subarray(c * plane, (c + 1) * plane), c * PAGE_H * PAGE_W + l * plane);
  }
  return out;
}

/** Writes `files` .npy files of `perFile` pages each, shape [n, 3, 96, 192]. */
export function writePageImages(dir: string, files: number, perFile: number, seed: number): string {
  mkdirSync(dir, { recursive: true });
  const n = 3 * PAGE_H * PAGE_W;
  for (let f = 0; f < files; f++) {
    const data = new Float32Array(perFile * n);
    for (let i = 0; i < perFile; i++) data.set(pageImage(seed + f * perFile + i), i * n);
    writeNpy(join(dir, `page-${String(f).padStart(3, '0')}.npy`), { dtype: 'float32', shape: [perFile, 3, PAGE_H, PAGE_W], data });
  }
  return dir;
}

// `edge-model eval --saliency INDEX --out FILE.png`: an occlusion saliency map (Zeiler & Fergus)
// of one example of an image model. A patch of `fill` slides over the image; at each position
// the drop in the probability of the class the model predicts on the intact image is measured,
// and every pixel gets the mean drop over the positions whose patch covers it. The map is
// written as an RGB PNG of the input's height and width (black: no drop, through red and
// yellow to white: the largest drop). The PNG is written here with node:zlib (no dependency).
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { listNpyFiles, loadBatch, singleInput } from './dataset.js';
import { ToolErrors } from './errors.js';
import { readModelFile } from './model-file.js';
import { probabilities } from './diagnostics.js';
import { floatTensor, modelRuns, openSession, runSession } from './ort-session.js';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An 8-bit RGB PNG from width x height x 3 bytes, row-major. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (1 + width * 3) + 1);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** Black -> red -> yellow -> white for v in [0, 1]. */
export function heatColor(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v)) * 3;
  const c = (t: number) => Math.round(255 * Math.min(1, Math.max(0, t)));
  return [c(x), c(x - 1), c(x - 2)];
}

export interface SaliencyOptions { index: number; out: string; patch?: number; stride?: number; fill?: number }

export interface SaliencyReport {
  out: string;
  index: number;
  height: number;
  width: number;
  predicted: number;
  probability: number;
  patch: number;
  stride: number;
  positions: number;
  /** Largest mean drop of the predicted class's probability, and the pixel where it is. */
  maxDrop: number;
  hottest: { row: number; col: number };
  /** The map itself, height x width, row-major (in --json only when small). */
  map: number[];
}

/** The sample at `index` (file-name order over the folder) and the image layout of the input. */
function sampleAt(modelFile: string, dataDir: string, index: number) {
  const model = readModelFile(modelFile);
  const input = singleInput(model, modelFile);
  const files = listNpyFiles(dataDir, 'data', ToolErrors.DATA_INVALID);
  let seen = 0;
  for (const f of files) {
    const b = loadBatch(f, input);
    const n = b.shape[0]!;
    if (index < seen + n) {
      const per = b.data.length / n;
      const shape = b.shape.slice(1);
      if (shape.length < 2 || shape.length > 3) {
        throw ToolErrors.USAGE(`--saliency needs an image input (C x H x W or H x W per sample); input "${input.name}" takes (${shape.join(', ')}) per sample`);
      }
      return { model, input, data: b.data.slice((index - seen) * per, (index - seen + 1) * per), shape };
    }
    seen += n;
  }
  throw ToolErrors.USAGE(`--saliency ${index}: the data folder holds ${seen} samples; expected an index in 0..${seen - 1}`);
}

export async function occlusionSaliency(modelFile: string, dataDir: string, o: SaliencyOptions): Promise<SaliencyReport> {
  if (!Number.isInteger(o.index) || o.index < 0) throw ToolErrors.USAGE(`--saliency ${o.index}: expected a sample index >= 0`);
  if (!o.out.toLowerCase().endsWith('.png')) throw ToolErrors.USAGE(`--out ${o.out}: the saliency map is a PNG; give a file name ending in .png`);
  const { model, input, data, shape } = sampleAt(modelFile, dataDir, o.index);
  const [c, h, w] = shape.length === 3 ? shape as [number, number, number] : [1, shape[0]!, shape[1]!];
  const patch = o.patch ?? Math.max(1, Math.round(Math.min(h, w) / 7));
  const stride = o.stride ?? Math.max(1, Math.floor(patch / 2));
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.min(h, w)) throw ToolErrors.USAGE(`--patch ${patch}: expected a whole number of pixels in 1..${Math.min(h, w)}`);
  if (!Number.isInteger(stride) || stride < 1) throw ToolErrors.USAGE(`--stride ${stride}: expected a whole number of pixels >= 1`);
  const fill = o.fill ?? 0;
  const session = await openSession(modelRuns(model).exact, modelFile);
  const fixedBatch = typeof input.shape[0] === 'number' && input.shape[0] > 0 ? input.shape[0] : 0;
  const output = session.outputNames[0]!;
  const run = async (images: Float32Array[]): Promise<{ probs: Float64Array; width: number }> => {
    const all: number[] = [];
    let width = 1;
    const step = fixedBatch === 1 ? 1 : 64;
    for (let s = 0; s < images.length; s += step) {
      const part = images.slice(s, s + step);
      const buf = new Float32Array(part.length * data.length);
      part.forEach((im, k) => buf.set(im, k * data.length));
      const out = (await runSession(session, { [input.name]: floatTensor(buf, [part.length, ...shape]) }, `saliency of sample ${o.index}`))[output]!;
      width = out.dims.slice(1).reduce((a, d) => a * d, 1);
      all.push(...(out.data as Float32Array));
    }
    return { ...probabilities(Float32Array.from(all), width) };
  };
  try {
    const base = await run([data]);
    let predicted = 0;
    if (base.width === 1) predicted = base.probs[0]! >= 0.5 ? 1 : 0;
    else for (let j = 1; j < base.width; j++) if (base.probs[j]! > base.probs[predicted]!) predicted = j;
    const pOf = (probs: Float64Array, i: number) => (base.width === 1 ? (predicted ? probs[i]! : 1 - probs[i]!) : probs[i * base.width + predicted]!);
    const p0 = pOf(base.probs, 0);
    const starts = (len: number) => {
      const s: number[] = [];
      for (let v = 0; v + patch <= len; v += stride) s.push(v);
      if (s[s.length - 1]! + patch < len) s.push(len - patch);
      return s;
    };
    const positions = starts(h).flatMap((y) => starts(w).map((x) => [y, x] as const));
    const images = positions.map(([y, x]) => {
      const im = Float32Array.from(data);
      for (let ch = 0; ch < c; ch++) for (let dy = 0; dy < patch; dy++) im.fill(fill, ch * h * w + (y + dy) * w + x, ch * h * w + (y + dy) * w + x + patch);
      return im;
    });
    const occluded = await run(images);
    const sum = new Float64Array(h * w);
    const cover = new Float64Array(h * w);
    positions.forEach(([y, x], k) => {
      const drop = p0 - pOf(occluded.probs, k);
      for (let dy = 0; dy < patch; dy++) for (let dx = 0; dx < patch; dx++) {
        sum[(y + dy) * w + x + dx] += drop;
        cover[(y + dy) * w + x + dx] += 1;
      }
    });
    const map = Array.from(sum, (s, i) => s / cover[i]!);
    let hot = 0;
    map.forEach((v, i) => { if (v > map[hot]!) hot = i; });
    const maxDrop = map[hot]!;
    const rgb = new Uint8Array(h * w * 3);
    map.forEach((v, i) => rgb.set(heatColor(maxDrop > 0 ? v / maxDrop : 0), i * 3));
    try {
      writeFileSync(o.out, encodePng(w, h, rgb));
    } catch (err) {
      throw ToolErrors.USAGE(`cannot write the saliency map ${o.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { out: o.out, index: o.index, height: h, width: w, predicted, probability: p0, patch, stride, positions: positions.length, maxDrop, hottest: { row: Math.floor(hot / w), col: hot % w }, map };
  } finally {
    await session.release();
  }
}

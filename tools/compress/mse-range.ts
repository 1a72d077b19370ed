// The MSE-optimal uint8 range of an activation: from its calibration histogram, the clipping
// range [lo, hi] (containing 0) whose quantization (rounding inside, clipping outside) makes
// the smallest expected squared error, instead of the extremes. Each histogram bin stands for
// values at its centre; a bin's error is that of its centre quantized with the candidate's
// scale and zero point. A reader that saturates (HardSwish below -3, Relu below 0) cannot
// tell values beyond its live interval apart, so errors are measured after clamping to it.

export interface Live { lo: number; hi: number }

/**
 * hist: counts over [min, max] in equal bins. Returns the range; [min, max] itself when the
 * histogram is empty or degenerate.
 */
export function mseRange(hist: Float64Array, min: number, max: number, live: Live = { lo: -Infinity, hi: Infinity }): { min: number; max: number } {
  const n = hist.length;
  const width = (max - min) / n;
  if (!(width > 0)) return { min, max };
  // The non-empty bins, their centres and counts (sparse: most bins are empty in tails).
  const centre: number[] = [];
  const count: number[] = [];
  for (let k = 0; k < n; k++) {
    if (hist[k] > 0) {
      centre.push(min + (k + 0.5) * width);
      count.push(hist[k]);
    }
  }
  if (centre.length === 0) return { min, max };
  const clampLive = (v: number) => Math.min(live.hi, Math.max(live.lo, v));
  const target = centre.map(clampLive);
  const error = (lo: number, hi: number): number => {
    const a = Math.min(0, lo);
    const b = Math.max(0, hi);
    const s = (b - a) / 255;
    if (!(s > 0)) return Infinity;
    const zp = Math.min(255, Math.max(0, Math.round(-a / s)));
    let e = 0;
    for (let i = 0; i < centre.length; i++) {
      const q = Math.min(255, Math.max(0, Math.round(centre[i] / s) + zp));
      const d = target[i] - clampLive((q - zp) * s);
      e += count[i] * d * d;
    }
    return e;
  };
  // Candidate bounds are bin edges: lo at or below 0, hi at or above 0.
  const edge = (k: number) => min + k * width;
  const zeroEdge = Math.min(n, Math.max(0, Math.round(-min / width)));
  const loEdges = (step: number, from = 0, to = zeroEdge) => range(Math.max(0, from), Math.min(zeroEdge, to), step);
  const hiEdges = (step: number, from = zeroEdge, to = n) => range(Math.max(zeroEdge, from), Math.min(n, to), step);
  let best = { lo: 0, hi: n, e: error(min, max) };
  const search = (los: number[], his: number[]) => {
    for (const i of los) {
      for (const j of his) {
        if (j <= i) continue;
        const e = error(edge(i), edge(j));
        if (e < best.e) best = { lo: i, hi: j, e };
      }
    }
  };
  // Coarse over the whole histogram, then every bin near the best coarse pair.
  const coarse = Math.max(1, Math.floor(n / 64));
  search(min < 0 ? loEdges(coarse) : [0], max > 0 ? hiEdges(coarse) : [n]);
  search(min < 0 ? loEdges(Math.max(1, coarse >> 3), best.lo - coarse, best.lo + coarse) : [0],
    max > 0 ? hiEdges(Math.max(1, coarse >> 3), best.hi - coarse, best.hi + coarse) : [n]);
  return { min: best.lo === 0 ? min : edge(best.lo), max: best.hi === n ? max : edge(best.hi) };
}

/** from, from + step, ..., and always `to` itself. */
function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let k = from; k < to; k += step) out.push(k);
  out.push(to);
  return out;
}

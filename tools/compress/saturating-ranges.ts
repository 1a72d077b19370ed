// Activation ranges narrowed to what their readers can tell apart. A tensor read only by
// HardSwish needs no values below -3 (HardSwish is 0 there), one read only by Relu none below
// 0: the calibrated extremes beyond those points cost resolution and change no result. PP-LCNetV3
// (PaddleOCR's PP-OCRv4 backbone) puts HardSwish after convolutions whose outputs reach -35
// while the useful part sits in [-3, 13]: a per-tensor uint8 range over [-35, 13] there alone
// took rec from 30 dB to 12 dB against fp32.
import type { NodeProto } from '../../agent/onnx/model.js';
import type { Range } from './calibrate.js';
import type { GraphIndex } from './graph.js';

/** The input interval outside which a reader's output no longer changes, or undefined. */
function saturation(n: NodeProto): { lo: number; hi: number } | undefined {
  switch (n.opType) {
    case 'HardSwish':
      return { lo: -3, hi: Infinity };
    case 'Relu':
      return { lo: 0, hi: Infinity };
    default:
      return undefined;
  }
}

/**
 * The interval outside which every reader of a tensor saturates (the first input of HardSwish
 * or Relu, read once), for the tensors where one exists. Graph outputs have none.
 */
export function liveIntervals(g: GraphIndex, tensors: Iterable<string>): Map<string, { lo: number; hi: number }> {
  const live = new Map<string, { lo: number; hi: number }>();
  for (const t of tensors) {
    if (g.isGraphOutput(t)) continue;
    const readers = g.consumers(t);
    if (readers.length === 0) continue;
    let lo = Infinity;
    let hi = -Infinity;
    let ok = true;
    for (const n of readers) {
      const s = n.input![0] === t && n.input!.filter((i) => i === t).length === 1 ? saturation(n) : undefined;
      if (!s) {
        ok = false;
        break;
      }
      lo = Math.min(lo, s.lo);
      hi = Math.max(hi, s.hi);
    }
    if (ok) live.set(t, { lo, hi });
  }
  return live;
}

/**
 * Narrows, in place, the range of every tensor whose readers all saturate (the first input of
 * HardSwish or Relu) to the widest of their live intervals. (HardSigmoid saturates on both
 * sides too, but narrowing its input put det's native engine 150 steps from ONNX Runtime's
 * exact int8 result: left out until the engine's HardSigmoid is checked at those edges.)
 * Returns the tensors narrowed. Graph outputs keep their calibrated range.
 */
export function narrowSaturatedRanges(g: GraphIndex, ranges: Map<string, Range>): string[] {
  const narrowed: string[] = [];
  for (const [t, { lo, hi }] of liveIntervals(g, ranges.keys())) {
    const r = ranges.get(t)!;
    const min = Math.max(r.min, lo);
    const max = Math.min(r.max, hi);
    // A range wholly in the flat part: nothing to tell apart, keep it as it was.
    if (!(min < max) || (min === r.min && max === r.max)) continue;
    ranges.set(t, { min, max });
    narrowed.push(t);
  }
  return narrowed;
}

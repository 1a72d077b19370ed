// MobileNetV3-Small (1.0, 224x224) as fp32 ONNX with random weights from a fixed seed: the
// paper's table 2 with BatchNorm folded; hard-swish, and squeeze-excite as
// GlobalAveragePool -> 1x1 conv -> ReLU -> 1x1 conv -> HardSigmoid -> Mul.
import { FloatGraph, type V, type Act } from './graph.js';

export const MOBILENET_V3_SMALL_INPUT = [1, 3, 224, 224];

// (kernel, expansion channels, output channels, squeeze-excite, activation, stride)
const BLOCKS: [number, number, number, boolean, Act, number][] = [
  [3, 16, 16, true, 'relu', 2], [3, 72, 24, false, 'relu', 2], [3, 88, 24, false, 'relu', 1],
  [5, 96, 40, true, 'hardswish', 2], [5, 240, 40, true, 'hardswish', 1], [5, 240, 40, true, 'hardswish', 1],
  [5, 120, 48, true, 'hardswish', 1], [5, 144, 48, true, 'hardswish', 1], [5, 288, 96, true, 'hardswish', 2],
  [5, 576, 96, true, 'hardswish', 1], [5, 576, 96, true, 'hardswish', 1],
];

const divisible8 = (v: number): number => Math.max(8, Math.floor((v + 4) / 8) * 8);

export function buildMobileNetV3Small(seed = 3): Uint8Array {
  const g = new FloatGraph(seed);
  const input: V = { name: 'input', shape: MOBILENET_V3_SMALL_INPUT };
  let x = g.conv(input, 16, 3, { stride: 2, act: 'hardswish' });
  for (const [k, exp, out, se, act, stride] of BLOCKS) {
    const inC = x.shape[1];
    let y = x;
    if (exp !== inC) y = g.conv(y, exp, 1, { act });
    y = g.conv(y, exp, k, { stride, group: exp, act });
    if (se) {
      let s = g.globalAvgPool(y);
      s = g.conv(s, divisible8(exp / 4), 1, { act: 'relu' });
      s = g.conv(s, exp, 1, { act: 'hardsigmoid' });
      y = g.mul(y, s);
    }
    const residual = stride === 1 && inC === out;
    y = g.conv(y, out, 1, { gain: residual ? 0.5 : 1 });
    x = residual ? g.add(x, y) : y;
  }
  x = g.conv(x, 576, 1, { act: 'hardswish' });
  x = g.gemm(g.flatten(g.globalAvgPool(x)), 1024, 'hardswish');
  const logits = g.gemm(x, 1000);
  return g.model(input, logits, 'mobilenet-v3-small');
}

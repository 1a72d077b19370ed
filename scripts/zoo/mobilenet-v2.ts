// MobileNetV2 (1.0, 224x224) as fp32 ONNX with random weights from a fixed seed: the layer
// shapes of torchvision's model with BatchNorm already folded (conv + bias + ReLU6), 52 convs.
import { FloatGraph, type V } from './graph.js';

export const MOBILENET_V2_INPUT = [1, 3, 224, 224];

// (expansion t, output channels c, repeats n, first stride s), from the paper's table 2.
const BLOCKS: [number, number, number, number][] = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

export function buildMobileNetV2(seed = 2): Uint8Array {
  const g = new FloatGraph(seed);
  const input: V = { name: 'input', shape: MOBILENET_V2_INPUT };
  let x = g.conv(input, 32, 3, { stride: 2, act: 'relu6' });
  for (const [t, c, n, s] of BLOCKS) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const inC = x.shape[1];
      let y = x;
      if (t !== 1) y = g.conv(y, inC * t, 1, { act: 'relu6' });
      y = g.conv(y, y.shape[1], 3, { stride, group: y.shape[1], act: 'relu6' });
      // The linear bottleneck; a residual branch gets a smaller gain so the sum stays near unit spread.
      const residual = stride === 1 && inC === c;
      y = g.conv(y, c, 1, { gain: residual ? 0.5 : 1 });
      x = residual ? g.add(x, y) : y;
    }
  }
  x = g.conv(x, 1280, 1, { act: 'relu6' });
  const logits = g.gemm(g.flatten(g.globalAvgPool(x)), 1000);
  return g.model(input, logits, 'mobilenet-v2');
}

// ResNet18 (224x224) as fp32 ONNX with random weights from a fixed seed: torchvision's layer
// shapes with BatchNorm already folded into each conv's bias, 20 convs + fc.
import { FloatGraph, type V } from './graph.js';

export const RESNET18_INPUT = [1, 3, 224, 224];

export function buildResNet18(seed = 18): Uint8Array {
  const g = new FloatGraph(seed);
  const input: V = { name: 'input', shape: RESNET18_INPUT };
  let x = g.conv(input, 64, 7, { stride: 2, act: 'relu' });
  x = g.maxpool(x, 3, 2, 1);
  for (const [c, firstStride] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
    for (let b = 0; b < 2; b++) {
      const stride = b === 0 ? firstStride : 1;
      const shortcut = stride !== 1 || x.shape[1] !== c ? g.conv(x, c, 1, { stride }) : x;
      let y = g.conv(x, c, 3, { stride, act: 'relu' });
      y = g.conv(y, c, 3, { gain: 0.5 });
      x = g.act(g.add(shortcut, y), 'relu');
    }
  }
  const logits = g.gemm(g.flatten(g.globalAvgPool(x)), 1000);
  return g.model(input, logits, 'resnet18');
}

// The model zoo for `npm run bench:zoo`: fp32 ONNX models with random weights from a fixed
// seed, built in memory. One line per model; add a model by adding its entry here.
import { imageLikeInput } from './graph.js';
import { buildMobileNetV2, MOBILENET_V2_INPUT } from './mobilenet-v2.js';
import { buildMobileNetV3Small, MOBILENET_V3_SMALL_INPUT } from './mobilenet-v3-small.js';
import { buildResNet18, RESNET18_INPUT } from './resnet18.js';
import { buildYoloLike, YOLO_LIKE_INPUT } from './yolo-like.js';

export interface ZooEntry {
  name: string;
  /** The fp32 ONNX model. */
  build(): Uint8Array;
  /** Batch-1 input shape (NCHW). */
  inputShape: number[];
  /** Calibration (and benchmark) input number `index`, shaped like inputShape. */
  calibration(index: number): Float32Array;
  /** The target for native int8 latency over ONNX Runtime int8 (1.0 when not given). */
  int8Target?: number;
}

const images = (shape: number[]) => (index: number): Float32Array => imageLikeInput(shape, 1000 + index);

export const ZOO: ZooEntry[] = [
  { name: 'mobilenet-v2', build: () => buildMobileNetV2(), inputShape: MOBILENET_V2_INPUT, calibration: images(MOBILENET_V2_INPUT) },
  { name: 'resnet18', build: () => buildResNet18(), inputShape: RESNET18_INPUT, calibration: images(RESNET18_INPUT) },
  { name: 'mobilenet-v3-small', build: () => buildMobileNetV3Small(), inputShape: MOBILENET_V3_SMALL_INPUT, calibration: images(MOBILENET_V3_SMALL_INPUT) },
  { name: 'yolo-like', build: () => buildYoloLike(), inputShape: [...YOLO_LIKE_INPUT.shape], calibration: images([...YOLO_LIKE_INPUT.shape]), int8Target: 0.7 },
];

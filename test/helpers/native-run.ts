// Runs a model on the native backend in a process of its own and writes every output as .npy:
// for comparing kernel variants, which the addon picks once per process from EDGE_KERNELS.
//   node --import tsx test/helpers/native-run.ts MODEL.onnx INPUT_NAME INPUT.npy OUT_DIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NativeBackend } from '../../agent/runtime/native/index.js';
import { readNpy, toFloat32, writeNpy } from '../../agent/tensor/npy.js';

const [model, inputName, inputFile, outDir] = process.argv.slice(2);
const x = readNpy(inputFile);
const backend = NativeBackend.load(readFileSync(model), { name: 'native-run' });
const out = await backend.run({ [inputName]: { dtype: 'float32', shape: x.shape, data: toFloat32(x) } });
for (const [name, t] of Object.entries(out)) writeNpy(join(outDir, `${name}.npy`), { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
console.log(JSON.stringify({ variant: backend.describe().kernelVariant }));
await backend.dispose();

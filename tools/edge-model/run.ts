// `edge-model run MODEL --input IN.npy --backend ort|native [--output OUT.npy | --output-dir DIR]`:
// runs a package or a bare .onnx file once, without an agent, and writes its first output (or
// every output) as .npy: the simplest way to check a model on a backend from any language.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { Errors, describe } from '../../agent/errors.js';
import type { IOSpec, Tensor, TensorMap } from '../../agent/runtime/backend.js';
import { inputProblem } from '../../agent/runtime/model-runtime.js';
import { readNpy, writeNpy, type NpyArray } from '../../agent/tensor/npy.js';
import { describeSpec } from '../../agent/tensor/shape.js';
import { openModel } from './open-model.js';

export interface RunOptions {
  /** `FILE.npy` for a single-input model, or `NAME=FILE.npy` per input. */
  inputs: string[];
  backend: 'ort' | 'native';
  output?: string;
  outputDir?: string;
  threads?: number;
}

export interface RunResult {
  backend: string;
  written: { name: string; file: string; shape: number[]; dtype: string }[];
  latencyMs: number;
}

const inputError = (model: string, msg: string) => Errors.INPUT_INVALID(model, msg);

/** A .npy array as the input tensor a spec asks for (float64 arrays become float32: numpy's default). */
function toInput(model: string, spec: IOSpec, arr: NpyArray, file: string): { tensor: Tensor; note?: string } {
  if (arr.dtype === spec.dtype) return { tensor: { dtype: spec.dtype, shape: arr.shape, data: arr.data as Tensor['data'] } };
  if (arr.dtype === 'float64' && spec.dtype === 'float32') {
    return { tensor: { dtype: 'float32', shape: arr.shape, data: Float32Array.from(arr.data as Float64Array) }, note: `${file}: float64 converted to float32` };
  }
  throw inputError(model, `${file}: input "${spec.name}" expects ${describeSpec(spec)}, the file holds ${arr.dtype}`);
}

export async function runModel(model: string, opts: RunOptions, log: (s: string) => void = () => undefined): Promise<RunResult> {
  if (opts.output && opts.outputDir) throw inputError(model, 'give --output or --output-dir, not both');
  const m = await openModel(model, opts.backend, { threads: opts.threads });
  try {
    const specs = m.pkg.manifest.inputs;
    const inputs: TensorMap = {};
    for (const arg of opts.inputs) {
      const eq = arg.indexOf('=');
      const [name, file] = eq > 0 && !arg.slice(0, eq).includes('/') ? [arg.slice(0, eq), arg.slice(eq + 1)] : [undefined, arg];
      const spec = name ? specs.find((s) => s.name === name) : specs.length === 1 ? specs[0] : undefined;
      if (!spec) {
        throw inputError(model, name
          ? `the model has no input "${name}"; it takes ${specs.map((s) => `${s.name} (${describeSpec(s)})`).join(', ')}`
          : `the model takes ${specs.length} inputs: give each as NAME=FILE.npy (${specs.map((s) => s.name).join(', ')})`);
      }
      const { tensor, note } = toInput(model, spec, readNpy(file), file);
      if (note) log(note);
      inputs[spec.name] = tensor;
    }
    const problem = inputProblem(specs, inputs);
    if (problem) throw inputError(model, problem);
    const t0 = performance.now();
    const out = await m.backend.run(inputs);
    const latencyMs = performance.now() - t0;
    const names = opts.outputDir ? m.pkg.manifest.outputs.map((o) => o.name) : [m.pkg.manifest.outputs[0]!.name];
    if (opts.outputDir) mkdirSync(opts.outputDir, { recursive: true });
    const written = names.map((name) => {
      const t = out[name];
      if (!t) throw Errors.INFERENCE_FAILED(model, `the backend returned no output "${name}"`);
      const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');
      const file = opts.outputDir ? path.join(opts.outputDir, `${safe}.npy`) : opts.output ?? `${safe}.npy`;
      writeNpy(file, { dtype: t.dtype, shape: t.shape, data: t.data });
      return { name, file, shape: t.shape, dtype: t.dtype };
    });
    return { backend: m.choice.chosen, written, latencyMs };
  } finally {
    await m.close();
  }
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run a model package, .edgepkg or bare .onnx once on a backend and write its outputs as .npy')
    .argument('<model>', 'package folder, .edgepkg file or .onnx file')
    .requiredOption('-i, --input <files...>', 'input .npy file; NAME=FILE.npy for models with several inputs')
    .addOption(new Option('-b, --backend <backend>', 'ort (ONNX Runtime) or native (the int8 engine)').choices(['ort', 'native']).default('ort'))
    .option('-o, --output <file>', 'where the first output goes (default: <output name>.npy)')
    .option('-d, --output-dir <dir>', 'write every output as <dir>/<output name>.npy')
    .option('--threads <n>', 'intra-op threads', (v) => Number(v), 1)
    .option('--json', 'print the result as JSON')
    .action(async (model: string, o: { input: string[]; backend: 'ort' | 'native'; output?: string; outputDir?: string; threads: number; json?: boolean }) => {
      try {
        const r = await runModel(model, { inputs: o.input, backend: o.backend, output: o.output, outputDir: o.outputDir, threads: o.threads }, (s) => process.stderr.write(`edge-model: ${s}\n`));
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else for (const w of r.written) process.stdout.write(`${w.name}: ${w.dtype} [${w.shape.join(', ')}] -> ${w.file} (${r.backend}, ${r.latencyMs.toFixed(2)} ms)\n`);
      } catch (err) {
        process.stderr.write(`edge-model: ${describe(err)}\n`);
        process.exitCode = 1;
      }
    });
}

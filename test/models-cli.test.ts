// The command-line paths, as real child processes: `edge-model run` on both backends writes
// .npy outputs, `edge-model bench --json` measures, and `edge-agent infer` sends a .npy or a
// JSON file to a running agent.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readNpy, writeNpy } from '../agent/tensor/npy.js';
import { argmax, digitBatch, FP32, INT8, root, startAgent, tempDir, INT8_VERSION } from './helpers/model-packages.js';

const exec = promisify(execFile);
const work = tempDir();
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Runs a CLI entry point as the bins do: the compiled dist/ (built by `npm install` / `npm run build:ts`). */
async function cli(entry: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [path.join(root, 'dist', entry.replace(/\.ts$/, '.js')), ...args], { cwd: work, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const batch = digitBatch(40, 3);
const input = path.join(work, 'digits.npy');
writeNpy(input, { dtype: 'float32', shape: batch.shape, data: batch.data });

t.test('edge-model run writes the first output as .npy on both backends, and they agree', async (t) => {
  const outs: Record<string, Float32Array> = {};
  for (const backend of ['ort', 'native']) {
    const out = path.join(work, `logits-${backend}.npy`);
    const r = await cli('tools/edge-model/cli.ts', ['run', INT8, '--input', input, '--backend', backend, '--output', out]);
    t.equal(r.code, 0, `${backend}: exit 0 (${r.stderr})`);
    t.match(r.stdout, new RegExp(`logits: float32 \\[3, 10\\] -> .*logits-${backend}.npy \\(${backend},`));
    const arr = readNpy(out);
    t.same(arr.shape, [3, 10]);
    outs[backend] = arr.data as Float32Array;
    const right = [0, 1, 2].filter((i) => argmax(arr.data.slice(i * 10, i * 10 + 10) as Float32Array) === batch.labels[i]).length;
    t.ok(right >= 2, `${backend}: ${right}/3 digits right`);
  }
  const worst = Math.max(...Array.from(outs.ort!, (v, i) => Math.abs(v - outs.native![i]!)));
  t.ok(worst < 0.2, `ort and native agree (largest difference ${worst})`);
});

t.test('edge-model run on a bare .onnx file with --output-dir writes every output', async (t) => {
  const dir = path.join(work, 'outdir');
  const r = await cli('tools/edge-model/cli.ts', ['run', path.join(FP32, 'model.onnx'), '--input', input, '--output-dir', dir, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.same(readdirSync(dir), ['logits.npy']);
  const json = JSON.parse(r.stdout) as { backend: string; written: { name: string; shape: number[] }[] };
  t.equal(json.backend, 'ort');
  t.same(json.written.map((w) => [w.name, w.shape]), [['logits', [3, 10]]]);
});

t.test('edge-model run refuses a wrong input with what was expected', async (t) => {
  const bad = path.join(work, 'bad.npy');
  writeNpy(bad, { dtype: 'float32', shape: [3, 784], data: batch.data });
  const r = await cli('tools/edge-model/cli.ts', ['run', FP32, '--input', bad]);
  t.equal(r.code, 1);
  t.match(r.stderr, /expected float32 with shape \[N, 1, 28, 28\], got shape \[3, 784\]/);
});

t.test('edge-model bench --json measures a package on a backend', async (t) => {
  const r = await cli('tools/edge-model/cli.ts', ['bench', INT8, '--backend', 'native', '--runs', '50', '--json']);
  t.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout) as Record<string, number | string>;
  t.match(b, { model: 'digits', version: INT8_VERSION, backend: 'native', runs: 50, precision: 'int8' });
  t.ok((b.p50Ms as number) > 0 && (b.p99Ms as number) >= (b.p50Ms as number), 'p50 and p99');
  t.ok((b.throughputPerSec as number) > 0);
  t.ok((b.accuracy as number) > 0.9, `held-out accuracy ${b.accuracy}`);
  t.equal(b.accuracySamples, 2000);
});

t.test('edge-agent infer sends a .npy or a JSON file to a running agent', async (t) => {
  const running = await startAgent({ models: [{ name: 'digits', package: INT8, backend: 'ort' }] });
  t.teardown(() => running.stop());
  const r = await cli('agent/cli.ts', ['infer', '--model', 'digits', '--input', input, '--url', running.url]);
  t.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as { version: string; backend: string; outputs: { logits: { shape: number[] } }; predictions: { index: number }[] };
  t.equal(res.version, INT8_VERSION);
  t.same(res.outputs.logits.shape, [3, 10]);
  const asJson = path.join(work, 'one.json');
  writeFileSync(asJson, JSON.stringify({ shape: [1, 1, 28, 28], data: Array.from(batch.data.subarray(0, 784)) }));
  const j = await cli('agent/cli.ts', ['infer', '-m', 'digits', '-i', asJson, '--url', running.url]);
  t.equal(j.code, 0, j.stderr);
  t.equal((JSON.parse(j.stdout) as { predictions: { index: number }[] }).predictions[0]!.index, res.predictions[0]!.index, 'same answer from JSON and .npy');
  const wrong = path.join(work, 'wrong.json');
  writeFileSync(wrong, JSON.stringify([[1, 2, 3]]));
  const w = await cli('agent/cli.ts', ['infer', '-m', 'digits', '-i', wrong, '--url', running.url]);
  t.equal(w.code, 1);
  t.match(w.stderr, /float32 with shape \[N, 1, 28, 28\]/);
});

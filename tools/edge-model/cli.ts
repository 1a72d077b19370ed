#!/usr/bin/env node
// edge-model: the compression toolkit. From an fp32 ONNX model to a signed int8 package:
// inspect, quantize (static or dynamic), prune, eval, compare, pack, keygen, sign, verify.
// Subcommands of other parts (run, bench) live in their own files beside this one, each
// exporting `register(program: Command)`; they are added when present.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EdgeError, describe } from '../../agent/errors.js';
import { AGENT_VERSION } from '../../agent/version.js';
import { RANGE_METHODS, type RangeMethod } from '../compress/calibrate.js';
import type { Comparison } from '../compress/compare.js';
import { Errors, ToolErrors } from '../compress/errors.js';
import type { Metric } from '../compress/metrics.js';
import type { QuantFormat } from '../compress/quantize-static.js';
import { QUANT_TARGETS, type QuantTarget } from '../compress/targets.js';

// The subcommands' modules load on use: keygen/sign/verify should not wait for ONNX Runtime.
const METRICS: Metric[] = ['accuracy', 'precision', 'recall', 'f1', 'auc', 'mse', 'mae', 'r2'];
const signing = () => import('../../agent/security/signing.js');
const archives = () => import('../../agent/models/archive.js');

function fail(err: unknown): never {
  if (err instanceof EdgeError) {
    process.stderr.write(`edge-model: ${err.message}\n`);
  } else {
    // Not a user's mistake: say so, and keep the stack for a bug report on request.
    process.stderr.write(`edge-model: internal error: ${describe(err)}\n`);
    if (process.env.EDGE_MODEL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  }
  process.exit(1);
}

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};
const warn = (s: string): void => {
  process.stderr.write(`edge-model: warning: ${s}\n`);
};
const action = <A extends unknown[]>(fn: (...args: A) => Promise<unknown> | unknown) => async (...args: A) => {
  try {
    await fn(...args);
  } catch (err) {
    fail(err);
  }
};

function fraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a fraction in [0, 1), got "${v}"`);
  return n;
}
function percent(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 50 || n > 100) throw new InvalidArgumentError(`expected a percentage in (50, 100], got "${v}"`);
  return n;
}

function headroomFactor(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 1 || n > 64) throw new InvalidArgumentError(`expected a factor from 1 to 64, got "${v}"`);
  return n;
}

const fmtDb = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)} dB` : 'inf dB (identical)');
const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(6));

function readKey(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw ToolErrors.KEY_INVALID(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The key given to sign must be a private ed25519 key: say so before touching the package. */
function checkPrivateKeyPem(pem: string, file: string): void {
  if (/-----BEGIN PUBLIC KEY-----/.test(pem)) {
    throw ToolErrors.KEY_INVALID(`${file} is a public key; sign with the private key of the pair (PREFIX.key from "edge-model keygen --out PREFIX"), and give the .pub to devices`);
  }
  let key;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw ToolErrors.KEY_INVALID(`${file} is not a PEM private key; expected the PREFIX.key that "edge-model keygen --out PREFIX" writes`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw ToolErrors.KEY_INVALID(`${file} is a ${key.asymmetricKeyType} key; packages are signed with ed25519 keys ("edge-model keygen --out PREFIX")`);
  }
}

/** Runs fn on a package folder; an .edgepkg archive is unpacked to a temporary folder first. */
async function withPackageFolder<T>(pkg: string, fn: (dir: string) => Promise<T>, repack: boolean): Promise<T> {
  const { extractArchive, isArchive, packArchive } = await archives();
  if (!existsSync(pkg)) throw Errors.PACKAGE_INVALID(pkg, 'no such package (expected a package folder or a .edgepkg file)');
  if (!isArchive(pkg)) return fn(pkg);
  const dir = mkdtempSync(join(tmpdir(), 'edge-model-'));
  try {
    // The tool reads the package; "edge-model verify" is what checks a signature.
    const { MANIFEST_ONLY } = await import('../../agent/models/verify.js');
    await extractArchive(pkg, dir, { verifier: MANIFEST_ONLY });
    const result = await fn(dir);
    if (repack) await packArchive(dir, pkg);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function buildCli(): Command {
  const program = new Command('edge-model')
    .description('Compresses, evaluates, packages and signs models for edge-agent devices.')
    .version(AGENT_VERSION)
    // Options after a subcommand belong to it: `pack --version 1.2.0` is the package version.
    .enablePositionalOptions()
    .showHelpAfterError();

  program
    .command('inspect')
    .description('inputs, outputs, operators, parameters, size, MACs per inference, and which backend can run it')
    .argument('<model>', 'ONNX model file')
    .option('--shape <dims>', 'input shape for counting MACs when the model has dynamic dimensions, e.g. 1x3x48x192')
    .option('--json', 'print one JSON object')
    .action(action(async (model: string, opts: { shape?: string; json?: boolean }) => {
      const { formatInspection, inspectModel, parseShape } = await import('../compress/inspect.js');
      const info = await inspectModel(model, opts.shape ? parseShape(opts.shape) : undefined);
      out(opts.json ? JSON.stringify(info) : formatInspection(info));
    }));

  program
    .command('quantize')
    .description('static post-training quantization (int8 weights, uint8 activations, int32 biases), or --dynamic')
    .argument('<in>', 'fp32 ONNX model')
    .argument('<out>', 'quantized ONNX model to write')
    .option('--calib <dir>', 'folder of .npy calibration inputs (float32, one sample or a batch per file)')
    .option('--dynamic', 'dynamic quantization of MatMul/Gemm (no calibration): DynamicQuantizeLinear + MatMulInteger')
    .option('--per-channel', 'one weight scale per output channel', true)
    .option('--no-per-channel', 'one weight scale per tensor')
    .addOption(new Option('--method <method>', 'activation range method').choices(RANGE_METHODS).default('minmax'))
    .option('--percentile <p>', 'percentile method: share of values kept inside the range', percent, 99.99)
    .addOption(new Option('--format <format>', 'qdq: Q/DQ around float ops; qoperator: QLinearConv / MatMulInteger').choices(['qdq', 'qoperator']).default('qdq'))
    .option('--no-bias-correction', 'do not fold the rounded weights\' average error into the biases')
    .option('--exclude <names>', 'comma-separated node or output names to keep in float')
    .addOption(new Option('--target <target>', 'what runs the model: native and ort-arm store int8 weights; ort-x86 stores uint8 weights, exact in ONNX Runtime on x86 without VNNI; auto picks int8 when the native engine runs the whole graph, uint8 otherwise').choices(QUANT_TARGETS).default('auto'))
    .addOption(new Option('--weight-bits <bits>', '7 keeps weights in [-63, 63] (per-channel symmetric; depthwise convolutions keep 8 bits) so the native engine runs them exactly with the faster vpmaddubsw kernel on x86 CPUs without VNNI (e.g. AMD Zen 3); costs a little accuracy').choices(['7', '8']).default('8'))
    .addOption(new Option('--activation-bits <bits>', '16 stores activations as uint16 (W8A16: weights stay int8) for models 8-bit activations cannot hold, such as PP-OCRv4 rec; ONNX Runtime runs them, the native engine runs Conv, Gemm, Add, GlobalAveragePool and reshapes on them').choices(['8', '16']).default('8'))
    .option('--range-headroom <factor>', 'widen each calibrated activation range this many times about zero (default 2 with 16-bit activations, else 1)', headroomFactor)
    .option('--json', 'print the report as one JSON object')
    .action(action(async (input: string, output: string, opts: { calib?: string; dynamic?: boolean; perChannel: boolean; biasCorrection: boolean; method: RangeMethod; percentile: number; format: QuantFormat; exclude?: string; target: QuantTarget; weightBits: string; activationBits: string; rangeHeadroom?: number; json?: boolean }) => {
      if (opts.dynamic && opts.calib) throw ToolErrors.USAGE('--dynamic quantizes activations at run time and takes no --calib; drop one of them');
      const { quantizeFile } = await import('../compress/quantize.js');
      const r = await quantizeFile(input, output, {
        calib: opts.calib, dynamic: opts.dynamic, perChannel: opts.perChannel, biasCorrection: opts.biasCorrection, method: opts.method, percentile: opts.percentile, format: opts.format, target: opts.target,
        weightBits: opts.weightBits === '7' ? 7 : 8,
        activationBits: opts.activationBits === '16' ? 16 : 8,
        rangeHeadroom: opts.rangeHeadroom,
        exclude: opts.exclude ? opts.exclude.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      });
      if (opts.json) return out(JSON.stringify(r));
      const q = Object.entries(r.quantized).map(([k, v]) => `${v} ${k}`).join(', ');
      out(`wrote ${output} (${r.mode}${r.format ? `, ${r.format}` : ''}${r.method ? `, ${r.method} ranges` : ''}${r.weightBits === 7 ? ', 7-bit weights' : ''}${r.activationBits === 16 ? ', 16-bit activations' : ''})`);
      if (r.foldedBatchNorms) out(`  folded ${r.foldedBatchNorms} BatchNormalization into Conv`);
      const sm = r.simplified;
      const rewrites = [[sm.hardSwish, 'HardSwish'], [sm.divToMul, 'Div->Mul'], [sm.gemm, 'MatMul+Add->Gemm'], [sm.flatten, 'Reshape->Flatten']].filter(([n]) => Number(n) > 0);
      if (rewrites.length) out(`  simplified: ${rewrites.map(([n, k]) => `${n} ${k}`).join(', ')}`);
      out(`  quantized: ${q}`);
      if (r.floatOps && Object.keys(r.floatOps).length) out(`  kept in float: ${Object.entries(r.floatOps).map(([k, v]) => `${v} ${k}`).join(', ')}`);
      if (r.calibration) out(`  calibration: ${r.calibration.samples} samples from ${r.calibration.files} files, ${r.calibration.tensors} tensors`);
      out(`  target ${r.target.target}: ${r.target.why}`);
      out(`  size: ${r.bytesBefore} -> ${r.bytesAfter} bytes (${(r.bytesBefore / r.bytesAfter).toFixed(2)}x smaller)`);
    }));

  program
    .command('prune')
    .description('magnitude pruning of Conv/Gemm/MatMul weights (unstructured, or whole output channels)')
    .argument('<in>', 'ONNX model')
    .argument('<out>', 'pruned ONNX model to write')
    .requiredOption('--sparsity <s>', 'fraction of weights (or channels) to zero, e.g. 0.5', fraction)
    .option('--structured', 'zero whole output channels with the smallest L2 norm')
    .option('--json', 'print the report as one JSON object')
    .action(action(async (input: string, output: string, opts: { sparsity: number; structured?: boolean; json?: boolean }) => {
      const { pruneFile } = await import('../compress/prune.js');
      const r = pruneFile(input, output, opts.sparsity, Boolean(opts.structured));
      if (opts.json) return out(JSON.stringify(r));
      out(`wrote ${output}: ${r.zeroed} of ${r.parameters} weights in ${r.layers} layers are zero (${(100 * r.sparsity).toFixed(1)}%); measure the cost with "edge-model eval"`);
    }));

  program
    .command('eval')
    .description('score a model on a held-out set; classification adds a confusion matrix and calibration (ECE), --slices per-group metrics, --saliency an occlusion map')
    .argument('<model>', 'ONNX model')
    .requiredOption('--data <dir>', 'folder of .npy inputs (samples in file-name order)')
    .option('--labels <file>', '.npy array or text file with one label per sample (required but with --saliency)')
    .addOption(new Option('--metric <metric>', 'metric').choices(METRICS).default('accuracy'))
    .option('--slices <file>', 'text file, one group name per sample: accuracy and macro-F1 per group and the largest gap')
    .option('--bins <n>', 'equal-width confidence bins of the calibration', (v) => Number(v), 10)
    .option('--saliency <index>', 'write an occlusion saliency map of sample INDEX (0-based, file-name order) to --out', (v) => Number(v))
    .option('--out <file.png>', 'where --saliency writes its PNG')
    .option('--patch <px>', '--saliency: side of the occluding patch (default: a seventh of the image side)', (v) => Number(v))
    .option('--stride <px>', '--saliency: step of the patch (default: half the patch)', (v) => Number(v))
    .option('--fill <value>', '--saliency: value of the occluded pixels', (v) => Number(v), 0)
    .option('--json', 'print one JSON object')
    .action(action(async (model: string, opts: { data: string; labels?: string; metric: Metric; slices?: string; bins: number; saliency?: number; out?: string; patch?: number; stride?: number; fill: number; json?: boolean }) => {
      if (opts.saliency !== undefined) {
        if (!opts.out) throw ToolErrors.USAGE('--saliency INDEX writes a PNG: give --out FILE.png');
        const { occlusionSaliency } = await import('../compress/saliency.js');
        const s = await occlusionSaliency(model, opts.data, { index: opts.saliency, out: opts.out, patch: opts.patch, stride: opts.stride, fill: opts.fill });
        if (opts.json) return out(JSON.stringify(s.height * s.width <= 4096 ? s : { ...s, map: undefined }));
        out(`wrote ${s.out} (${s.width}x${s.height}): occlusion saliency of sample ${s.index}, predicted class ${s.predicted} (p = ${s.probability.toFixed(4)})`);
        out(`  ${s.positions} positions of a ${s.patch}x${s.patch} patch, stride ${s.stride}; largest mean drop ${s.maxDrop.toFixed(4)} at row ${s.hottest.row}, column ${s.hottest.col}`);
        return;
      }
      if (!opts.labels) throw ToolErrors.USAGE('eval scores against labels: give --labels FILE');
      const { evaluateModel } = await import('../compress/evaluate.js');
      const e = await evaluateModel(model, opts.data, opts.labels, opts.metric, { slices: opts.slices, bins: opts.bins });
      if (opts.json) return out(JSON.stringify(e));
      out(`${e.metric}: ${fmt(e.value)} on ${e.samples} samples (output ${e.output}; exact integer arithmetic)`);
      out(`ONNX Runtime on this CPU: ${e.ortOnThisCpu.sameAsExact ? 'the same' : fmt(e.ortOnThisCpu.value)} (${e.ortOnThisCpu.why})`);
      if (e.warning) warn(e.warning);
      out(`size: ${e.bytes} bytes (${e.gzipBytes} gzipped)`);
      out(`all: ${Object.entries(e.all).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
      const d = await import('../compress/diagnostics.js');
      if (e.confusion) out((e.confusion.classes <= 20 ? d.formatConfusion(e.confusion) : [`confusion matrix: ${e.confusion.classes} classes, in --json`]).join('\n'));
      if (e.calibration) out(d.formatCalibration(e.calibration).join('\n'));
      if (e.slices) out(d.formatSlices(e.slices).join('\n'));
    }));

  program
    .command('compare')
    .description('per output: SQNR in dB, top-1 agreement, max and mean absolute difference of B against A')
    .argument('<a>', 'reference ONNX model (e.g. fp32)')
    .argument('<b>', 'model under test (e.g. int8)')
    .requiredOption('--data <dir>', 'folder of .npy inputs')
    .option('--json', 'print one JSON object')
    .action(action(async (a: string, b: string, opts: { data: string; json?: boolean }) => {
      const { compareModels } = await import('../compress/compare.js');
      const c: Comparison = await compareModels(a, b, opts.data);
      if (opts.json) return out(JSON.stringify(c, (_k, v) => (v === Infinity ? 'Infinity' : v)));
      out(`${c.samples} samples`);
      const line = (o: Comparison['outputs'][number]) =>
        `${o.name}: SQNR ${fmtDb(o.sqnrDb)}, top-1 agreement ${o.top1Agreement === null ? 'n/a' : `${(100 * o.top1Agreement).toFixed(2)}%`}, max |diff| ${fmt(o.maxAbsDiff)}, mean |diff| ${fmt(o.meanAbsDiff)}`;
      out('exact (integer arithmetic without saturation):');
      for (const o of c.outputs) out(`  ${line(o)}`);
      if (c.ortOnThisCpu.sameAsExact) {
        out(`ONNX Runtime on this CPU: the same (${c.ortOnThisCpu.why})`);
      } else {
        out(`ONNX Runtime on this CPU (${c.ortOnThisCpu.why}):`);
        for (const o of c.ortOnThisCpu.outputs) out(`  ${line(o)}`);
      }
      if (c.warning) warn(c.warning);
    }));

  program
    .command('pack')
    .description('write a model package (manifest.json + model.onnx) with evaluation results and a drift reference')
    .argument('<model>', 'ONNX model')
    .requiredOption('--name <name>', 'package name')
    .requiredOption('--version <version>', 'semantic version, e.g. 1.0.0')
    .option('--out <dir>', 'package folder to create (default NAME-VERSION)')
    .option('--task <task>', 'what the model does (default classification, or the template\'s)')
    .option('--template <manifest>', 'copy task, description, pre- and postprocessing from this manifest.json (e.g. the fp32 package)')
    .option('--description <text>', 'free text for the manifest')
    .option('--calib <dir>', 'folder of .npy inputs for the drift reference statistics')
    .option('--data <dir>', 'held-out inputs to record an evaluation in the manifest')
    .option('--labels <file>', 'labels for --data')
    .addOption(new Option('--metric <metric>', 'metric for --data').choices(METRICS).default('accuracy'))
    .option('--archive', 'also write the single-file form, DIR.edgepkg')
    .action(action(async (model: string, opts: { name: string; version: string; out?: string; task?: string; template?: string; description?: string; calib?: string; data?: string; labels?: string; metric: Metric; archive?: boolean }) => {
      const { packModel } = await import('../compress/pack.js');
      const r = await packModel(model, { ...opts, out: opts.out ?? `${opts.name}-${opts.version}` });
      out(`wrote package ${r.dir} (${r.manifest.quantization.scheme}, ${Object.values(r.manifest.files).reduce((s, f) => s + f.bytes, 0)} bytes)`);
      if (r.manifest.evaluation) out(`  ${r.manifest.evaluation.metric}: ${fmt(r.manifest.evaluation.value)} on ${r.manifest.evaluation.samples} samples`);
      if (r.manifest.drift) out('  drift reference: from the calibration data');
      if (r.archive) out(`  archive: ${r.archive}`);
    }));

  program
    .command('keygen')
    .description('create an ed25519 key pair for signing packages: PREFIX.key (private, mode 600) and PREFIX.pub')
    .requiredOption('--out <prefix>', 'path prefix of the two files')
    .action(action(async (opts: { out: string }) => {
      const pair = (await signing()).generateKeyPair();
      for (const f of [`${opts.out}.key`, `${opts.out}.pub`]) {
        if (existsSync(f)) throw ToolErrors.KEY_INVALID(`${f} already exists; refusing to overwrite a key`);
      }
      try {
        writeFileSync(`${opts.out}.key`, pair.privateKeyPem, { mode: 0o600 });
        chmodSync(`${opts.out}.key`, 0o600);
        writeFileSync(`${opts.out}.pub`, pair.publicKeyPem);
      } catch (err) {
        throw ToolErrors.KEY_INVALID(`cannot write the key files: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      out(`wrote ${opts.out}.key and ${opts.out}.pub (key id ${pair.keyId})`);
    }));

  program
    .command('sign')
    .description('sign a package (folder or .edgepkg) with an ed25519 private key')
    .argument('<package>', 'package folder or .edgepkg file')
    .requiredOption('--key <file>', 'PEM private key (from "edge-model keygen")')
    .action(action(async (pkg: string, opts: { key: string }) => {
      const pem = readKey(opts.key, 'private key');
      checkPrivateKeyPem(pem, opts.key);
      const { signPackage } = await signing();
      const { keyId } = await withPackageFolder(pkg, (dir) => signPackage(dir, pem), true);
      out(`signed ${pkg} with key ${keyId}`);
    }));

  program
    .command('verify')
    .description('check a package\'s signature and every file\'s sha256 against trusted public keys')
    .argument('<package>', 'package folder or .edgepkg file')
    .requiredOption('--pubkey <files...>', 'trusted PEM public key file(s)')
    .action(action(async (pkg: string, opts: { pubkey: string[] }) => {
      const keys = opts.pubkey.map((f) => readKey(f, 'public key'));
      const { verifyPackage } = await signing();
      const v = await withPackageFolder(pkg, (dir) => verifyPackage(dir, keys), false);
      out(`verified ${pkg}: signed by key ${v.keyId}, ${v.files.length} files intact`);
    }));

  return program;
}

/** Adds the subcommands other parts keep in their own files (tools/edge-model/run.ts, bench.ts, learn.ts). */
export async function registerExtensions(program: Command): Promise<void> {
  for (const name of ['run', 'bench', 'learn']) {
    const here = fileURLToPath(new URL(`./${name}`, import.meta.url));
    if (!existsSync(`${here}.js`) && !existsSync(`${here}.ts`)) continue;
    const mod = (await import(`./${name}.js`)) as { register?: (p: Command) => void };
    mod.register?.(program);
  }
}

export async function main(argv: string[]): Promise<void> {
  // `edge-model inspect m.onnx | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = buildCli();
  await registerExtensions(program);
  await program.parseAsync(argv);
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/(dist\/)?tools\//, 'tools/'));
if (isMain || process.env.EDGE_MODEL_CLI === '1') {
  main(process.argv).catch(fail);
}

// `edge-model finetune` and `edge-model distill` (issue 21): train a model's head on field data
// (transfer learning) or on a bigger model's outputs (distillation). Registered by cli.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { describe, EdgeError, ToolErrors } from '../../agent/errors.js';
import type { Epoch } from '../learn/train.js';

const num = (what: string) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected ${what}, got "${v}"`);
  return n;
};
const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${v}"`);
  return n;
};

interface CommonOpts {
  from?: string; head?: boolean; classes?: number; hidden: number; epochs: number; lr: number; batch: number;
  schedule: 'cosine' | 'step' | 'constant'; l2: number; patience: number; seed: number; optimizer: 'adam' | 'sgd'; val: number; curve?: string; json?: boolean;
  folds?: number;
}

function common(cmd: Command): Command {
  return cmd
    .option('--head', 'replace the last Gemm/MatMul (and a Softmax after it): the default')
    .option('--from <node>', 'freeze the graph up to this node\'s output (or tensor) and train everything after it anew')
    .option('--classes <n>', 'classes of the new head (default: the model\'s output width)', int)
    .option('--hidden <n>', 'hidden units of a two-layer MLP head (0: a linear head)', int, 0)
    .option('--epochs <n>', 'training epochs', int, 30)
    .option('--lr <rate>', 'learning rate', num('a learning rate'), 0.01)
    .option('--batch <n>', 'mini-batch size', int, 64)
    .addOption(new Option('--schedule <schedule>', 'learning-rate schedule').choices(['cosine', 'step', 'constant']).default('cosine'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd']).default('adam'))
    .option('--l2 <lambda>', 'L2 weight decay', num('a weight decay'), 1e-4)
    .option('--patience <n>', 'stop after this many epochs without a better validation loss (0: never)', int, 5)
    .option('--val <fraction>', 'share of the samples held out for validation (a seeded split)', num('a fraction'), 0.2)
    .option('--seed <n>', 'seed of the split, the initial weights and the batch order', int, 1)
    .option('--curve <file.svg>', 'write the train/validation loss curve as an SVG file')
    .option('--json', 'print the report as one JSON object');
}

function progress(json?: boolean): (e: Epoch) => void {
  const tty = process.stderr.isTTY && !process.env.EDGE_MODEL_QUIET;
  return (e) => {
    const line = `epoch ${e.epoch}: train loss ${e.train.toFixed(4)}, validation loss ${e.val.toFixed(4)}, lr ${e.lr.toPrecision(3)}`;
    if (tty) process.stderr.write(`\r\x1b[K${line}`);
    else if (!json) process.stdout.write(`${line}\n`);
  };
}

function run<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await fn(...args);
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    } catch (err) {
      if (process.stderr.isTTY) process.stderr.write('\n');
      process.stderr.write(err instanceof EdgeError ? `edge-model: ${err.message}\n` : `edge-model: internal error: ${describe(err)}\n`);
      process.exitCode = 1;
    }
  };
}

const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : `${(100 * v).toFixed(2)}%`);

function headOptions(o: CommonOpts) {
  if (o.head && o.from) throw ToolErrors.USAGE('--head and --from name two different cuts; give one');
  return { ...o, valFraction: o.val };
}

export function register(program: Command): void {
  common(program
    .command('finetune')
    .description('transfer learning: freeze the model up to a tensor, train a new head on labelled .npy data, write the model with it')
    .argument('<in>', 'fp32 ONNX model')
    .argument('<out>', 'fine-tuned fp32 ONNX model to write')
    .requiredOption('--data <dir>', 'folder of .npy inputs (samples in file-name order)')
    .requiredOption('--labels <file>', '.npy array or text file with one class index per sample')
    .option('--folds <k>', 'k-fold cross-validation first: train on k-1 folds, score the held-out one, k times (seeded folds)', (v) => Number(v)))
    .action(run(async (input: string, output: string, o: CommonOpts & { data: string; labels: string }) => {
      const { finetuneFile } = await import('../learn/finetune.js');
      const r = await finetuneFile(input, output, o.data, o.labels, headOptions(o), progress(o.json));
      if (o.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
      process.stdout.write([
        `wrote ${output} (${r.bytes} bytes): a new head on ${r.feature} (${r.featureDim} features) -> ${r.classes} classes`,
        `  samples: ${r.samples.train} train, ${r.samples.validation} validation; best epoch ${r.bestEpoch} of ${r.history.length}${r.stoppedEarly ? ' (stopped early)' : ''}`,
        ...(r.crossValidation ? [
          `  ${r.crossValidation.folds}-fold cross-validation: ${r.crossValidation.perFold.map((p) => `fold ${p.fold} ${pct(p.accuracy)} (${p.samples})`).join(', ')}`,
          `  cross-validated accuracy: ${pct(r.crossValidation.mean)} ± ${pct(r.crossValidation.sd)} (mean ± sd over the folds)`,
        ] : []),
        `  validation accuracy: ${pct(r.validationAccuracy.before)} before, ${pct(r.validationAccuracy.after)} after`,
        ...(r.curve ? [`  loss curve: ${r.curve}`] : []),
        '',
      ].join('\n'));
    }));

  common(program
    .command('stack')
    .description('train the combiner of a stacked ensemble (fusion "stacked") on its members\' concatenated scores over labelled data')
    .argument('<out>', 'combiner ONNX model to write')
    .requiredOption('--members <models...>', 'the ensemble\'s members, in the order of the config\'s "members" (.onnx files or package folders)')
    .requiredOption('--data <dir>', 'folder of .npy inputs the members take (a validation set none of them trained on)')
    .requiredOption('--labels <file>', '.npy array or text file with one class index per sample'))
    .action(run(async (output: string, o: CommonOpts & { members: string[]; data: string; labels: string }) => {
      const { stackFiles } = await import('../learn/stack.js');
      const r = await stackFiles(o.members, output, o.data, o.labels, headOptions(o), progress(o.json));
      if (o.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
      process.stdout.write([
        `wrote ${output} (${r.bytes} bytes): a combiner of ${r.members.length} members (${r.featureDim} scores) -> ${r.classes} classes`,
        `  samples: ${r.samples.train} train, ${r.samples.validation} validation; best epoch ${r.bestEpoch} of ${r.history.length}${r.stoppedEarly ? ' (stopped early)' : ''}`,
        `  validation accuracy: ${r.members.map((m, i) => `${m} ${pct(r.validationAccuracy.members[i]!)}`).join(', ')}; mean fusion ${pct(r.validationAccuracy.mean)}; stacked ${pct(r.validationAccuracy.stacked)}`,
        ...(r.curve ? [`  loss curve: ${r.curve}`] : []),
        '',
      ].join('\n'));
    }));

  common(program
    .command('distill')
    .description('distillation: train the student\'s head on the teacher\'s soft targets (and the labels when given)')
    .argument('<out>', 'student ONNX model to write')
    .requiredOption('--teacher <model>', 'the bigger or more accurate ONNX model')
    .requiredOption('--student <model>', 'the smaller (pruned, quantized) ONNX model whose head is trained')
    .requiredOption('--data <dir>', 'folder of .npy inputs both models take')
    .option('--labels <file>', 'labels for --data (without them, the teacher\'s soft targets alone)')
    .option('--temperature <t>', 'softmax temperature of the soft targets', num('a temperature'), 4)
    .option('--alpha <a>', 'weight of the soft targets against the labels', num('a weight'), 0.7)
    .option('--no-keep-zeros', 'let the zero weights of the student\'s head (pruned) take values again'))
    .action(run(async (output: string, o: CommonOpts & { teacher: string; student: string; data: string; labels?: string; temperature: number; alpha: number; keepZeros: boolean }) => {
      const { distillFiles } = await import('../learn/distill.js');
      const r = await distillFiles(o.teacher, o.student, output, o.data, { ...headOptions(o), temperature: o.temperature, alpha: o.alpha, labels: o.labels, keepZeros: o.keepZeros }, progress(o.json));
      if (o.json) return void process.stdout.write(`${JSON.stringify(r)}\n`);
      const what = r.against === 'labels' ? 'accuracy' : 'top-1 agreement with the teacher';
      process.stdout.write([
        `wrote ${output} (${r.bytes} bytes)`,
        `  validation ${what} (${r.samples.validation} samples): teacher ${pct(r.teacher)}, student ${pct(r.studentBefore)} before, ${pct(r.studentAfter)} after`,
        `  best epoch ${r.bestEpoch} of ${r.history.length}${r.stoppedEarly ? ' (stopped early)' : ''}`,
        ...(r.zerosKept ? [`  head: ${r.zerosKept} of ${r.headWeights} weights kept at zero (the student's pruning)`] : []),
        ...(r.curve ? [`  loss curve: ${r.curve}`] : []),
        '',
      ].join('\n'));
    }));
}

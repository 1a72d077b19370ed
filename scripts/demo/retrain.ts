// The controller side of the learning demo, between the field data and the rollout: the same
// functions `edge-fleet dataset`, `edge-model finetune`, `quantize`, `compare`, `pack` and
// `edge-fleet publish` run, in this process, one after the other.
import path from 'node:path';
import { signPackage } from '../../agent/security/signing.js';
import { buildDataset, exportDataset, type ExportCounts } from '../../controller/dataset.js';
import { publishPackage } from '../../controller/publish.js';
import type { FleetStore } from '../../controller/store.js';
import type { ControllerStore } from '../../controller/store/types.js';
import { compareModels } from '../../tools/compress/compare.js';
import { packModel } from '../../tools/compress/pack.js';
import { quantizeFile } from '../../tools/compress/quantize.js';
import { finetuneFile, type FinetuneReport } from '../../tools/learn/finetune.js';
import { root } from '../fleet-local.js';

export interface Retrained {
  counts: ExportCounts[];
  finetune: FinetuneReport;
  /** Top-1 agreement of the int8 model with the fine-tuned fp32 one on the test split (exact integer arithmetic). */
  int8Agreement: number;
  /** The int8 package's accuracy on the test split, as recorded in its manifest. */
  int8TestAccuracy: number;
  testSamples: number;
  packageDir: string;
  keyId: string;
  published: string;
}

export interface RetrainSpec {
  db: ControllerStore;
  store: FleetStore;
  model: string;
  /** The version whose field examples are the dataset. */
  fromVersion: string;
  /** Only the examples recorded at or after this time (ms since the epoch). */
  since: number;
  toVersion: string;
  work: string;
  privateKeyPem: string;
  say: (line: string) => void;
}

export async function retrain(s: RetrainSpec): Promise<Retrained> {
  const field = path.join(s.work, 'field');
  const examples = await buildDataset(s.db, { model: s.model, version: s.fromVersion, since: s.since, labelled: true });
  const counts = exportDataset(examples, field);
  const n = (split: string): number => counts.find((c) => c.split === split)?.examples ?? 0;
  s.say(`dataset exported (edge-fleet dataset ${s.model} --version ${s.fromVersion} --since ${new Date(s.since).toISOString()} --labelled --out ${path.relative(process.cwd(), field)}): ` +
    `${n('train')} train, ${n('validation')} validation, ${n('test')} test examples`);

  const base = path.join(root, 'models/digits-fp32/model.onnx');
  const tuned = path.join(s.work, 'tuned.onnx');
  const train = path.join(field, 'train');
  const finetune = await finetuneFile(base, tuned, train, path.join(train, 'labels.txt'), {
    hidden: 0, valFraction: 0.2, epochs: 15, lr: 0.01, batch: 64, schedule: 'cosine', l2: 1e-4, patience: 5, seed: 7, optimizer: 'adam',
  });
  const pct = (v: number | null): string => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  s.say(`fine-tuned a new head on ${finetune.samples.train} examples (edge-model finetune, ${finetune.history.length} epochs): ` +
    `validation accuracy ${pct(finetune.validationAccuracy.before)} -> ${pct(finetune.validationAccuracy.after)} on ${finetune.samples.validation} held-back examples`);

  const int8 = path.join(s.work, 'tuned-int8.onnx');
  const q = await quantizeFile(tuned, int8, { calib: train, perChannel: true, method: 'minmax', format: 'qdq', target: 'auto' });
  const test = path.join(field, 'test');
  const c = await compareModels(tuned, int8, test);
  const int8Agreement = c.outputs[0]!.top1Agreement ?? NaN;
  const packageDir = path.join(s.work, `${s.model}-${s.toVersion}`);
  // The drift reference of the new version is the shifted domain it was tuned for (--calib).
  const pack = await packModel(int8, {
    name: s.model, version: s.toVersion, out: packageDir, template: path.join(root, 'models/digits-fp32/manifest.json'),
    calib: train, data: test, labels: path.join(test, 'labels.txt'),
    description: `digits fine-tuned on field examples of ${s.model}@${s.fromVersion} (learning demo)`,
  });
  const { keyId } = await signPackage(packageDir, s.privateKeyPem);
  const pub = await publishPackage(s.store, packageDir);
  const int8TestAccuracy = pack.manifest.evaluation!.value;
  const testSamples = pack.manifest.evaluation!.samples;
  s.say(`quantized to int8 (${q.bytesBefore} -> ${q.bytesAfter} bytes, ${(100 * int8Agreement).toFixed(1)}% top-1 agreement with fp32), ` +
    `packed with a drift reference of the new domain, test accuracy ${pct(int8TestAccuracy)} on ${testSamples} test examples, ` +
    `signed (key ${keyId}) and published as ${pub.name}@${pub.version}`);
  return { counts, finetune, int8Agreement, int8TestAccuracy, testSamples, packageDir, keyId, published: `${pub.name}@${pub.version}` };
}

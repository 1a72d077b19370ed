// Datasets at the controller (issue 21, docs/learning.md): the field examples devices sent
// (stream "examples") joined with their labels (stream "feedback") by answer id, for one model
// version; and their export as .npy inputs plus a labels file per split, the folders
// `edge-model eval`/`finetune --data DIR --labels FILE` read. The split is a hash of the
// example id, so an example is in the same split in every export and in one split only.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetErrors } from '../protocol/errors.js';
import { writeNpy, type NpyArray, type NpyDType } from '../agent/tensor/npy.js';
import type { ControllerStore, TelemetryRow } from './store/types.js';

export const EXAMPLES_STREAM = 'examples';
export const FEEDBACK_STREAM = 'feedback';
export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];
/** Fractions of train and validation; the rest is test. */
export interface SplitRatios { train: number; validation: number }
export const DEFAULT_SPLIT: SplitRatios = { train: 0.8, validation: 0.1 };

type Label = number | string;
interface TensorRecord { dtype: string; shape: number[]; base64: string }
export interface DatasetExample {
  id: string;
  deviceId: string;
  model: string;
  version: string;
  ts: number;
  reason?: string;
  inputs: Record<string, TensorRecord>;
  /** One label per row of the input, as class indices (names mapped through the model's predictions); absent when unlabelled. */
  labels?: number[];
}

export interface DatasetQuery { model: string; version: string; since?: number; devices?: string[]; labelled?: boolean }

/** Which split an example id belongs to: the first 32 bits of its SHA-256 as a fraction. */
export function splitOf(id: string, r: SplitRatios = DEFAULT_SPLIT): Split {
  const u = createHash('sha256').update(id).digest().readUInt32BE(0) / 2 ** 32;
  if (u < r.train) return 'train';
  if (u < r.train + r.validation) return 'validation';
  return 'test';
}

const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined);

/** The examples of one model version with their labels: a clear error for an unknown model or version, or nothing left. */
export async function buildDataset(store: ControllerStore, q: DatasetQuery): Promise<DatasetExample[]> {
  const rows = await store.streamRecords([EXAMPLES_STREAM, FEEDBACK_STREAM], { since: q.since, devices: q.devices });
  return joinRecords(rows, q);
}

export function joinRecords(rows: TelemetryRow[], q: DatasetQuery): DatasetExample[] {
  const versions = new Map<string, Set<string>>();
  const classNames = new Map<string, number>();
  const examples = new Map<string, DatasetExample & { raw?: unknown }>();
  const labels = new Map<string, unknown>();
  for (const r of rows) {
    const p = obj(r.payload);
    if (!p || typeof p.id !== 'string' || typeof p.model !== 'string' || typeof p.version !== 'string') continue;
    if (!versions.has(p.model)) versions.set(p.model, new Set());
    versions.get(p.model)!.add(p.version);
    if (p.model !== q.model || p.version !== q.version) continue;
    if (Array.isArray(p.predictions)) {
      for (const x of p.predictions) {
        const pr = obj(x);
        if (pr && typeof pr.label === 'string' && typeof pr.index === 'number') classNames.set(pr.label, pr.index);
      }
    }
    if (r.stream === FEEDBACK_STREAM) {
      if (p.label !== undefined && !labels.has(p.id)) labels.set(p.id, p.label);
    } else if (r.stream === EXAMPLES_STREAM && obj(p.inputs) && !examples.has(p.id)) {
      examples.set(p.id, {
        id: p.id, deviceId: r.deviceId, model: p.model, version: p.version, ts: r.ts,
        ...(typeof p.reason === 'string' ? { reason: p.reason } : {}),
        inputs: p.inputs as Record<string, TensorRecord>, raw: p.label,
      });
    }
  }
  const filters = `${q.since !== undefined ? ` since ${new Date(q.since).toISOString()}` : ''}${q.devices?.length ? ` from ${q.devices.join(', ')}` : ''}`;
  if (filters && !versions.get(q.model)?.has(q.version)) throw FleetErrors.DATASET(`${q.model}@${q.version}: no examples or labels${filters}`);
  if (!versions.has(q.model)) {
    const known = [...versions.keys()].sort();
    throw FleetErrors.DATASET(`no examples or labels of model ${q.model} arrived${known.length ? `; models with examples or labels: ${known.join(', ')}` : ' (no device has sent any: is a capture policy on? see docs/learning.md)'}`);
  }
  if (!versions.get(q.model)!.has(q.version)) {
    throw FleetErrors.DATASET(`no examples or labels of ${q.model} version ${q.version} arrived; versions seen: ${[...versions.get(q.model)!].sort().join(', ')}`);
  }
  const toIndex = (l: unknown, id: string): number => {
    if (typeof l === 'number' && Number.isInteger(l) && l >= 0) return l;
    if (typeof l === 'string' && classNames.has(l)) return classNames.get(l)!;
    throw FleetErrors.DATASET(`example ${id}: label ${JSON.stringify(l)?.slice(0, 60)} is neither a class index nor a class name seen in ${q.model}@${q.version}'s predictions`);
  };
  const out: DatasetExample[] = [];
  for (const e of examples.values()) {
    const raw = labels.get(e.id) ?? e.raw;
    const { raw: _drop, ...ex } = e;
    if (raw !== undefined) ex.labels = (Array.isArray(raw) ? raw as Label[] : [raw as Label]).map((l) => toIndex(l, e.id));
    if (q.labelled && !ex.labels) continue;
    out.push(ex);
  }
  if (!out.length) {
    throw FleetErrors.DATASET(`${q.model}@${q.version}: no ${q.labelled ? 'labelled ' : ''}examples${filters} (${examples.size} examples, ${labels.size} labels of this version in all)`);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const NPY: Record<string, { dtype: NpyDType; make: (b: Buffer) => NpyArray['data'] }> = {
  float32: { dtype: 'float32', make: (b) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) },
  float64: { dtype: 'float64', make: (b) => new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8) },
  uint8: { dtype: 'uint8', make: (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength) },
  int8: { dtype: 'int8', make: (b) => new Int8Array(b.buffer, b.byteOffset, b.byteLength) },
  int32: { dtype: 'int32', make: (b) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4) },
  int64: { dtype: 'int64', make: (b) => new BigInt64Array(b.buffer, b.byteOffset, b.byteLength / 8) },
};

function toNpy(e: DatasetExample): NpyArray {
  const names = Object.keys(e.inputs);
  if (names.length !== 1) throw FleetErrors.DATASET(`example ${e.id} has ${names.length} inputs (${names.join(', ')}); the export writes single-input models`);
  const t = e.inputs[names[0]!]!;
  const kind = NPY[t.dtype];
  if (!kind) throw FleetErrors.DATASET(`example ${e.id}: input dtype ${t.dtype} has no .npy form here (float32, float64, uint8, int8, int32, int64)`);
  const b = Buffer.from(t.base64, 'base64');
  const copy = Buffer.alloc(b.length);
  b.copy(copy); // aligned for the typed array
  return { dtype: kind.dtype, shape: [...t.shape], data: kind.make(copy) };
}

export interface ExportCounts { split: string; examples: number; labels: number; perClass: Record<string, number> }

/**
 * Writes DIR/{train,validation,test}/NNNNNN-ID.npy with DIR/SPLIT/labels.txt (one label per
 * row, in file-name order) for the labelled examples, and DIR/unlabelled/ for the rest.
 */
export function exportDataset(examples: DatasetExample[], dir: string, ratios: SplitRatios = DEFAULT_SPLIT): ExportCounts[] {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw FleetErrors.DATASET(`--out ${dir} is a file; give a new or empty folder`);
    if (readdirSync(dir).length) throw FleetErrors.DATASET(`--out ${dir} is not empty; give a new or empty folder (an export never mixes with an earlier one)`);
  }
  // Every input converted before anything is written: a refused example leaves no half export.
  const arrays = new Map(examples.map((e) => [e.id, toNpy(e)]));
  const groups = new Map<string, DatasetExample[]>();
  for (const e of examples) {
    const g = e.labels ? splitOf(e.id, ratios) : 'unlabelled';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(e);
  }
  const counts: ExportCounts[] = [];
  for (const g of [...SPLITS, 'unlabelled']) {
    const list = groups.get(g) ?? [];
    const perClass: Record<string, number> = {};
    let labels = 0;
    if (list.length) {
      const sub = join(dir, g);
      mkdirSync(sub, { recursive: true });
      const lines: string[] = [];
      list.forEach((e, i) => {
        const arr = arrays.get(e.id)!;
        if (e.labels) {
          for (const l of e.labels) {
            lines.push(String(l));
            perClass[l] = (perClass[l] ?? 0) + 1;
            labels++;
          }
        }
        writeNpy(join(sub, `${String(i).padStart(6, '0')}-${e.id}.npy`), arr);
      });
      if (g !== 'unlabelled') writeFileSync(join(sub, 'labels.txt'), lines.join('\n') + '\n');
    }
    counts.push({ split: g, examples: list.length, labels, perClass });
  }
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({
    model: examples[0]?.model, version: examples[0]?.version, split: ratios, exportedAt: new Date().toISOString(), counts,
  }, null, 2) + '\n');
  return counts;
}

// Opening a model outside the agent, for `edge-model run` and `edge-model bench`: a package
// folder, a .edgepkg archive (unpacked to a temporary folder) or a bare .onnx file (its
// inputs and outputs read from the graph), on the backend asked for.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgeError, Errors } from '../../agent/errors.js';
import { extractArchive, isArchive } from '../../agent/models/archive.js';
import { loadPackage, type ModelPackage } from '../../agent/models/package.js';
import type { Manifest } from '../../agent/models/manifest.js';
import { MANIFEST_ONLY as verifier } from '../../agent/models/verify.js';
import { decodeModel, dataTypeName, valueInfoShape, valueInfoType, type ValueInfoProto } from '../../agent/onnx/model.js';
import type { Backend, DType, IOSpec } from '../../agent/runtime/backend.js';
import { openBackend, type BackendChoice } from '../../agent/runtime/choose.js';
import type { GraphOptimizationLevel } from '../../agent/runtime/ort-backend.js';

export interface OpenedModel {
  pkg: ModelPackage;
  backend: Backend;
  choice: BackendChoice;
  close(): Promise<void>;
}

const DTYPES: Record<string, DType> = { float: 'float32', uint8: 'uint8', int8: 'int8', int32: 'int32', int64: 'int64' };

function specOf(v: ValueInfoProto, file: string): IOSpec {
  const t = dataTypeName(valueInfoType(v));
  const dtype = DTYPES[t];
  if (!dtype) throw Errors.PACKAGE_INVALID(file, `tensor ${v.name} has element type ${t}; supported: float32, uint8, int8, int32, int64`);
  return { name: v.name ?? '', dtype, shape: valueInfoShape(v).map((d) => (d === 0 ? 'N' : d)) };
}

/** A bare .onnx file as an in-memory package (no manifest on disk, nothing to verify). */
function bareModel(file: string): ModelPackage {
  const model = readFileSync(file);
  const proto = decodeModel(model, file);
  const inits = new Set((proto.graph!.initializer ?? []).map((i) => i.name));
  const manifest: Manifest = {
    format: 1,
    name: path.basename(file, '.onnx').replace(/[^A-Za-z0-9._-]/g, '_') || 'model',
    version: '0.0.0',
    task: 'unknown',
    inputs: (proto.graph!.input ?? []).filter((v) => !inits.has(v.name ?? '')).map((v) => specOf(v, file)),
    outputs: (proto.graph!.output ?? []).map((v) => specOf(v, file)),
    quantization: { scheme: 'none', precision: 'float32' },
    files: {},
  };
  return { dir: path.resolve(file), manifest, model, proto, digest: '', signature: { verified: false, note: 'bare .onnx file' } };
}

export async function openModel(target: string, backend: 'ort' | 'native', opts: { threads?: number; graphOptimizationLevel?: GraphOptimizationLevel } = {}): Promise<OpenedModel> {
  if (!existsSync(target)) throw Errors.NOT_FOUND(`${target}: no such file or folder (expected a package folder, a .edgepkg file or a .onnx file)`);
  let tmp: string | undefined;
  let pkg: ModelPackage;
  if (statSync(target).isDirectory()) {
    pkg = await loadPackage(target, { verifier });
  } else if (isArchive(target)) {
    tmp = mkdtempSync(path.join(tmpdir(), 'edge-model-run-'));
    try {
      await extractArchive(target, path.join(tmp, 'pkg'), { verifier });
      pkg = await loadPackage(path.join(tmp, 'pkg'), { verifier });
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  } else {
    pkg = bareModel(target);
  }
  const cleanup = () => tmp && rmSync(tmp, { recursive: true, force: true });
  try {
    const opened = await openBackend(pkg, backend, { threads: opts.threads ?? 1, graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all' });
    return {
      pkg,
      backend: opened.backend,
      choice: opened.choice,
      async close() {
        await opened.backend.dispose();
        cleanup();
      },
    };
  } catch (err) {
    cleanup();
    throw err;
  }
}

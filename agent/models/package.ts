// Reading a model package from disk and refusing anything inconsistent before it can
// serve: schema, file hashes, signature hook, ONNX parse, and agreement between the
// manifest's inputs/outputs and the graph's. Every error names the package and the problem.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { EdgeError, Errors, describe } from '../errors.js';
import { decodeModel, dataTypeName, valueInfoShape, valueInfoType, type ModelProto, type ValueInfoProto } from '../onnx/model.js';
import { sha256 } from './hash.js';
import { MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE, manifestProblems, type Manifest, type TensorSpecManifest } from './manifest.js';
import { verifySignature, type SignatureVerdict } from './signature.js';

export interface ModelPackage {
  /** Absolute folder. */
  dir: string;
  manifest: Manifest;
  /** The bytes of model.onnx (checked against the manifest's sha256). */
  model: Uint8Array;
  /** The parsed graph, for backends that compile it (the native engine). */
  proto: ModelProto;
  /** sha256 of manifest.json: identifies this exact build. */
  digest: string;
  signature: SignatureVerdict;
}

const ONNX_DTYPES: Record<string, TensorSpecManifest['dtype']> = {
  float: 'float32', uint8: 'uint8', int8: 'int8', int32: 'int32', int64: 'int64',
};

export async function loadPackage(dirIn: string): Promise<ModelPackage> {
  const dir = path.resolve(dirIn);
  const refuse = (problem: string): EdgeError => Errors.PACKAGE_INVALID(dir, problem);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw refuse('it is not a folder (expected a folder with manifest.json and model.onnx)');
  const manifestPath = path.join(dir, MANIFEST_FILE);
  if (!existsSync(manifestPath)) throw refuse(`${MANIFEST_FILE} is missing`);
  const manifestBytes = readFileSync(manifestPath);
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestBytes.toString('utf8'));
  } catch (err) {
    throw refuse(`${MANIFEST_FILE} is not valid JSON: ${describe(err)}`);
  }
  const problems = manifestProblems(parsed);
  if (problems.length) throw refuse(`${MANIFEST_FILE} is invalid: ${problems.join('; ')}`);
  const manifest = parsed as Manifest;
  const label = `${dir} (${manifest.name}@${manifest.version})`;
  const refuseNamed = (problem: string): EdgeError => Errors.PACKAGE_INVALID(label, problem);

  if (!manifest.files[MODEL_FILE]) throw refuseNamed(`${MANIFEST_FILE} does not list ${MODEL_FILE} under "files"`);
  let model: Uint8Array | undefined;
  for (const [name, want] of Object.entries(manifest.files)) {
    const file = path.join(dir, name);
    if (!existsSync(file)) throw refuseNamed(`file ${name} is listed in the manifest but missing`);
    const bytes = readFileSync(file);
    if (bytes.length !== want.bytes) throw refuseNamed(`file ${name} has ${bytes.length} bytes, the manifest says ${want.bytes}`);
    const got = sha256(bytes);
    if (got !== want.sha256) throw refuseNamed(`file ${name} does not match its sha256 (manifest ${want.sha256.slice(0, 12)}..., file ${got.slice(0, 12)}...)`);
    if (name === MODEL_FILE) model = bytes;
  }

  const sigPath = path.join(dir, SIGNATURE_FILE);
  let signature: SignatureVerdict;
  try {
    signature = await verifySignature({
      packageDir: dir, manifestBytes, signature: existsSync(sigPath) ? readFileSync(sigPath) : undefined,
      name: manifest.name, version: manifest.version,
    });
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    throw refuseNamed(`signature check failed: ${describe(err)}`);
  }

  let proto: ModelProto;
  try {
    proto = decodeModel(model!, MODEL_FILE);
  } catch (err) {
    throw refuseNamed(describe(err));
  }
  checkAgainstGraph(manifest, proto, refuseNamed);
  return { dir, manifest, model: model!, proto, digest: sha256(manifestBytes), signature };
}

/** The manifest's inputs and outputs must be the graph's, in name, element type and shape. */
function checkAgainstGraph(m: Manifest, proto: ModelProto, refuse: (p: string) => EdgeError): void {
  const graph = proto.graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const graphInputs = (graph.input ?? []).filter((v) => !inits.has(v.name ?? ''));
  const compare = (kind: 'input' | 'output', declared: TensorSpecManifest[], actual: ValueInfoProto[]): void => {
    const names = actual.map((v) => v.name ?? '');
    const declaredNames = declared.map((d) => d.name);
    const missing = names.filter((n) => !declaredNames.includes(n));
    const extra = declaredNames.filter((n) => !names.includes(n));
    if (missing.length || extra.length) {
      throw refuse(`the manifest's ${kind}s [${declaredNames.join(', ')}] are not the model's ${kind}s [${names.join(', ')}]`);
    }
    for (const d of declared) {
      const v = actual.find((a) => a.name === d.name)!;
      const dtype = ONNX_DTYPES[dataTypeName(valueInfoType(v))];
      if (dtype !== d.dtype) throw refuse(`${kind} ${d.name}: the manifest says ${d.dtype}, the model has ${dataTypeName(valueInfoType(v))}`);
      const shape = valueInfoShape(v);
      // A graph without shape information for this tensor cannot be checked here; ORT checks at run.
      if (v.type?.tensorType?.shape == null) continue;
      const mismatch = shape.length !== d.shape.length || shape.some((dim, i) => {
        const want = d.shape[i]!;
        if (typeof dim === 'number' && dim > 0) return typeof want !== 'number' || want !== dim;
        return false; // symbolic or unknown in the graph: the manifest may name it or fix it
      });
      if (mismatch) throw refuse(`${kind} ${d.name}: the manifest's shape [${d.shape.join(', ')}] disagrees with the model's [${shape.join(', ')}]`);
    }
  };
  compare('input', m.inputs, graphInputs);
  compare('output', m.outputs, graph.output ?? []);
  const post = m.postprocessing;
  if (post) {
    const out = m.outputs.find((o) => o.name === post.output);
    if (!out) throw refuse(`postprocessing.output "${post.output}" is not one of the outputs [${m.outputs.map((o) => o.name).join(', ')}]`);
    const classes = out.shape[out.shape.length - 1];
    if (post.labels && typeof classes === 'number' && post.labels.length !== classes) {
      throw refuse(`postprocessing.labels has ${post.labels.length} names but output ${out.name} has ${classes} classes`);
    }
  }
  const pre = m.preprocessing;
  if (pre && pre.mean.length !== pre.std.length) throw refuse(`preprocessing.mean has ${pre.mean.length} values but std has ${pre.std.length}`);
}

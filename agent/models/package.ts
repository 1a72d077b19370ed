// Reading a model package from disk and refusing anything inconsistent before it can
// serve: schema, signature (by the verifier the caller passes, before any listed file is
// read), sizes, file hashes, ONNX parse, and agreement between the manifest's inputs/outputs
// and the graph's. Every error names the package and the problem: EDGE_PACKAGE_SIGNATURE
// when the verifier refuses the signature, EDGE_PACKAGE_INVALID for everything else.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { EdgeError, Errors, describe } from '../errors.js';
import { decodeModel, dataTypeName, valueInfoShape, valueInfoType, type ModelProto, type ValueInfoProto } from '../onnx/model.js';
import { sha256 } from './hash.js';
import { MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE, manifestProblems, type Manifest, type TensorSpecManifest } from './manifest.js';
import { verifySignature, type SignatureVerdict, type SignatureVerifier } from './verify.js';
import { MAX_ARCHIVE_BYTES, MAX_MANIFEST_BYTES } from './archive.js';

/** sha256 of a file read in 64 KiB pieces, refusing it once more than `max` bytes came. */
async function sha256OfFile(file: string, max: number, refuse: (p: string) => EdgeError): Promise<string> {
  const h = createHash('sha256');
  let n = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
    n += (chunk as Buffer).length;
    if (n > max) throw refuse(`file ${path.basename(file)} grew beyond the ${max} bytes the manifest declares while being read`);
    h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

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

export interface ReadOptions {
  /** Checks manifest.sig (agent/models/verify.ts); the agent's comes from its security policy. */
  verifier: SignatureVerifier;
}

export async function loadPackage(dirIn: string, opts: ReadOptions): Promise<ModelPackage> {
  const dir = path.resolve(dirIn);
  const refuse = (problem: string): EdgeError => Errors.PACKAGE_INVALID(dir, problem);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw refuse('it is not a folder (expected a folder with manifest.json and model.onnx)');
  const manifestPath = path.join(dir, MANIFEST_FILE);
  if (!existsSync(manifestPath)) throw refuse(`${MANIFEST_FILE} is missing`);
  const manifestSize = statSync(manifestPath).size;
  if (manifestSize > MAX_MANIFEST_BYTES) throw refuse(`${MANIFEST_FILE} has ${manifestSize} bytes, at most ${MAX_MANIFEST_BYTES} are allowed`);
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

  // The signature over the manifest first: until it holds, no file the manifest lists is read.
  const sigPath = path.join(dir, SIGNATURE_FILE);
  const sigSize = existsSync(sigPath) ? statSync(sigPath).size : 0;
  if (sigSize > MAX_MANIFEST_BYTES) throw refuseNamed(`${SIGNATURE_FILE} has ${sigSize} bytes, at most ${MAX_MANIFEST_BYTES} are allowed`);
  const signature = await verifySignature(opts.verifier, {
    packageDir: dir, manifestBytes, signature: existsSync(sigPath) ? readFileSync(sigPath) : undefined,
    name: manifest.name, version: manifest.version,
  }, label);

  if (!manifest.files[MODEL_FILE]) throw refuseNamed(`${MANIFEST_FILE} does not list ${MODEL_FILE} under "files"`);
  const declared = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
  if (declared > MAX_ARCHIVE_BYTES) throw refuseNamed(`the manifest lists ${declared} bytes of files, at most ${MAX_ARCHIVE_BYTES} are allowed`);
  let model: Uint8Array | undefined;
  for (const [name, want] of Object.entries(manifest.files)) {
    const file = path.join(dir, name);
    // The size before any byte is read: never more than the signed manifest declares.
    const st = existsSync(file) ? lstatSync(file) : undefined;
    if (!st) throw refuseNamed(`file ${name} is listed in the manifest but missing`);
    if (!st.isFile()) throw refuseNamed(`file ${name} is not a plain file`);
    if (st.size !== want.bytes) throw refuseNamed(`file ${name} has ${st.size} bytes, the manifest says ${want.bytes}`);
    let got: string;
    if (name === MODEL_FILE) {
      model = readFileSync(file);
      if (model.length !== want.bytes) throw refuseNamed(`file ${name} changed size while being read`);
      got = sha256(model);
    } else {
      got = await sha256OfFile(file, want.bytes, refuseNamed);
    }
    if (got !== want.sha256) throw refuseNamed(`file ${name} does not match its sha256 (manifest ${want.sha256.slice(0, 12)}..., file ${got.slice(0, 12)}...)`);
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

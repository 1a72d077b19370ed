// `edge-agent infer --model NAME --input FILE`: one inference against a running agent's local
// API. FILE is JSON (a whole request body, or one tensor for a single-input model) or a NumPy
// .npy file (sent as a base64 buffer in the dtype the model declares).
import { readFileSync } from 'node:fs';
import { EdgeError, Errors } from '../errors.js';
import type { IOSpec } from '../runtime/backend.js';
import { parseNpy } from '../tensor/npy.js';

export interface InferClientOptions {
  url: string;
  model: string;
  input: string;
  token?: string;
}

const clientError = (msg: string) => Errors.BAD_REQUEST(msg);

async function call(opts: InferClientOptions, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  let res: Response;
  try {
    res = await fetch(`${opts.url.replace(/\/$/, '')}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw Errors.AGENT_UNREACHABLE(opts.url, (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Builds the request body from the file, using the model's declared inputs. */
export function requestBody(file: string, specs: IOSpec[]): unknown {
  const bytes = readFileSync(file);
  if (file.endsWith('.npy')) {
    if (specs.length !== 1) throw clientError(`the model takes ${specs.length} inputs; a .npy file can only feed a single-input model (use a JSON body)`);
    const spec = specs[0]!;
    const arr = parseNpy(bytes, file);
    let data = arr.data;
    if (arr.dtype !== spec.dtype) {
      if (arr.dtype === 'float64' && spec.dtype === 'float32') data = Float32Array.from(arr.data as Float64Array);
      else throw clientError(`${file} holds ${arr.dtype}, input "${spec.name}" takes ${spec.dtype}`);
    }
    const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return { inputs: { [spec.name]: { shape: arr.shape, base64: raw.toString('base64') } } };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw clientError(`${file} is neither a .npy file nor valid JSON: ${(err as Error).message}`);
  }
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && 'inputs' in parsed) return parsed;
  if (specs.length !== 1) throw clientError(`the model takes ${specs.length} inputs; give a body {"inputs": {...}} naming each`);
  return { inputs: { [specs[0]!.name]: parsed } };
}

export async function inferOnce(opts: InferClientOptions): Promise<unknown> {
  const info = await call(opts, `/v1/models/${encodeURIComponent(opts.model)}`);
  if (info.status !== 200) throw new EdgeError(info.body?.error?.code ?? Errors.BAD_REQUEST.code, info.body?.error?.message ?? `HTTP ${info.status}`, info.status);
  const body = requestBody(opts.input, info.body.inputs as IOSpec[]);
  const res = await call(opts, `/v1/models/${encodeURIComponent(opts.model)}/infer`, body);
  if (res.status !== 200) {
    const e = res.body?.error;
    const expected = e?.details?.expected ? ` (expected: ${JSON.stringify(e.details.expected)})` : '';
    throw new EdgeError(e?.code ?? Errors.BAD_REQUEST.code, `${e?.message ?? `HTTP ${res.status}`}${expected}`, res.status);
  }
  return res.body;
}

// For the Open Inference Protocol tests: Python's grpcio client (Debian's python3-grpcio, stubs
// compiled from the repo's .proto at test time), a grpc-js client of the same .proto, and
// digits as the raw little-endian bytes the protocol carries.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_FILE } from '../../agent/inference-protocol/grpc-server.js';
import { root } from './model-packages.js';

/** Debian's interpreter (python3-grpcio, python3-grpc-tools are installed for it). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const CLIENT = path.join(root, 'test/fixtures/inference-protocol/grpc_client.py');

/** Compiles the protocol's .proto into Python stubs in `dir` with grpc_tools.protoc. */
export function compilePythonStubs(dir: string): void {
  execFileSync(PYTHON, ['-m', 'grpc_tools.protoc', `-I${path.dirname(PROTO_FILE)}`, `--python_out=${dir}`, `--grpc_python_out=${dir}`, PROTO_FILE], { stdio: 'pipe' });
}

export type PyResult = { ok: true; [k: string]: any } | { ok: false; code: string; details: string };

/** Runs the Python client's plan of calls; resolves with one result per call. */
export function runPythonClient(plan: { target: string; stubs: string; token?: string; calls: Record<string, unknown>[] }, timeoutMs = 60_000): Promise<PyResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python client exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`python client printed no JSON: ${out.slice(0, 500)} ${err.slice(-1000)}`));
      }
    });
    child.stdin.end(JSON.stringify(plan));
  });
}

/** A grpc-js client of inference.GRPCInferenceService (promise-returning unary calls). */
export function grpcClient(target: string, credentials = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}) {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as any;
  const client = new pkg.inference.GRPCInferenceService(target, credentials, { 'grpc.max_send_message_length': 64 * 1024 * 1024, ...options }) as grpc.Client & Record<string, Function>;
  const call = (method: string, req: unknown, opts: { metadata?: grpc.Metadata; deadlineMs?: number } = {}): Promise<any> => new Promise((resolve, reject) => {
    const callOpts: grpc.CallOptions = opts.deadlineMs ? { deadline: Date.now() + opts.deadlineMs } : {};
    client[method]!.call(client, req, opts.metadata ?? new grpc.Metadata(), callOpts, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
  });
  return { client, call, close: () => client.close() };
}

/** Raw little-endian bytes of a typed array, as the protocol's raw contents carry them. */
export const rawBytes = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

export { grpc };

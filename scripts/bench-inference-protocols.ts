// npm run bench:protocols [-- --seconds S]
// The inference protocols side by side against one agent: /v1 JSON, /v2 JSON (Open Inference
// Protocol), /v2 with Triton's binary tensor data, and gRPC with raw contents; for the digits
// model (1x1x28x28 in, 3 KB) and a 224x224 model (1x3x224x224 in, 588 KB: built here, a
// global average pool and a 3->10 Gemm, so the protocol's cost shows, not the model's); at 1
// and 8 concurrent clients: requests/s and p50 latency seen by the client. The agent runs in
// its own process (this script with --serve); the clients encode requests once and decode
// every answer's logits, as a real client would.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { LOADER_OPTIONS, PROTO_FILE } from '../agent/inference-protocol/grpc-server.js';
import { DataType, encodeModel, makeModel, makeNode, makeTensor, makeValueInfo } from '../agent/onnx/model.js';
import { writePackage } from '../agent/models/write.js';

const here = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(here), '..');
const args = process.argv.slice(2);
const arg = (flag: string, dflt: string): string => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const SECONDS = Number(arg('--seconds', '3'));

/** A 224x224 RGB classifier-shaped model: GlobalAveragePool -> Flatten -> Gemm(3x10). */
function writePool224(dir: string): void {
  const w = new Float32Array(30).map((_, i) => ((i * 7) % 11) / 10 - 0.5);
  const model = encodeModel(makeModel({
    name: 'pool224',
    node: [makeNode('GlobalAveragePool', ['input'], ['pooled']), makeNode('Flatten', ['pooled'], ['flat']), makeNode('Gemm', ['flat', 'w', 'b'], ['logits'])],
    initializer: [makeTensor('w', [3, 10], w), makeTensor('b', [10], new Float32Array(10))],
    input: [makeValueInfo('input', DataType.FLOAT, ['N', 3, 224, 224])],
    output: [makeValueInfo('logits', DataType.FLOAT, ['N', 10])],
  }, 13));
  writePackage(dir, {
    name: 'pool224', version: '1.0.0', task: 'image-classification', description: 'benchmark model: 224x224 RGB in, 10 scores out',
    inputs: [{ name: 'input', dtype: 'float32', shape: ['N', 3, 224, 224] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }],
    quantization: { scheme: 'none', precision: 'float32' },
  }, { 'model.onnx': model });
}

if (args.includes('--serve')) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-protocols-'));
  writePool224(path.join(dir, 'pool224'));
  const config = parseConfig({
    deviceId: 'bench', dataDir: path.join(dir, 'data'), log: { level: 'warn' }, security: { requireSignedPackages: false },
    health: { port: 0 }, grpc: { port: 0 }, runtime: { threads: 1 },
    models: [{ name: 'digits', package: path.join(root, 'models/digits-fp32'), backend: 'ort' }, { name: 'pool224', package: path.join(dir, 'pool224'), backend: 'ort' }],
  }, 'bench config', dir);
  const agent = new Agent(config);
  await agent.start();
  process.stdout.write(`bench-ready ${JSON.stringify({ url: agent.url, grpcPort: agent.grpc.port })}\n`); // the agent logs to stdout too
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
} else {
  await main();
}

interface Case { model: string; shape: number[]; data: Float32Array }
type Call = () => Promise<number>; // resolves with the number of logits decoded

function protocols(url: string, grpcPort: number, c: Case, client: grpc.Client & Record<string, Function>): [string, Call][] {
  const flat = Array.from(c.data);
  const raw = Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength);
  const v1Body = JSON.stringify({ inputs: { input: { shape: c.shape, data: flat } } });
  const v2Body = JSON.stringify({ inputs: [{ name: 'input', shape: c.shape, datatype: 'FP32', data: flat }] });
  const binHeader = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: c.shape, datatype: 'FP32', parameters: { binary_data_size: raw.length } }], parameters: { binary_data_output: true } }));
  const binBody = Buffer.concat([binHeader, raw]);
  const grpcReq = { model_name: c.model, inputs: [{ name: 'input', datatype: 'FP32', shape: c.shape }], raw_input_contents: [raw] };
  const ok = (r: Response) => {
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    return r;
  };
  return [
    ['/v1 JSON', async () => {
      const r = ok(await fetch(`${url}/v1/models/${c.model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: v1Body }));
      return ((await r.json()) as any).outputs.logits.data.length;
    }],
    ['/v2 JSON', async () => {
      const r = ok(await fetch(`${url}/v2/models/${c.model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: v2Body }));
      return ((await r.json()) as any).outputs[0].data.length;
    }],
    ['/v2 binary', async () => {
      const r = ok(await fetch(`${url}/v2/models/${c.model}/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binHeader.length) }, body: binBody }));
      const body = Buffer.from(await r.arrayBuffer());
      const n = Number(r.headers.get('inference-header-content-length'));
      JSON.parse(body.subarray(0, n).toString());
      return new Float32Array(body.buffer.slice(body.byteOffset + n, body.byteOffset + body.length)).length;
    }],
    ['gRPC raw', () => new Promise<number>((resolve, reject) => {
      client.ModelInfer!.call(client, grpcReq, (err: Error | null, res: any) => {
        if (err) return reject(err);
        const b: Buffer = res.raw_output_contents[0];
        resolve(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)).length);
      });
    })],
  ];
}

/** `clients` loops calling `call` for `seconds` (after a short warm-up): requests/s and p50 (ms). */
async function measure(call: Call, clients: number, seconds: number): Promise<{ rps: number; p50: number; n: number }> {
  const warmEnd = performance.now() + 300;
  await Promise.all(Array.from({ length: clients }, async () => { while (performance.now() < warmEnd) await call(); }));
  const lat: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await call();
      lat.push(performance.now() - t0);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / elapsed, p50: lat[Math.floor(lat.length / 2)] ?? NaN, n: lat.length };
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`bench:protocols  ${SECONDS} s per case  cpu ${cpus[0]?.model ?? 'unknown'} x${cpus.length}  load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}  node ${process.version}  ${process.platform}/${process.arch}`);
  console.log('agent in its own process, runtime.threads 1, ONNX Runtime backend; clients in this process (fetch keep-alive; one grpc-js channel)');
  const server = spawn(process.execPath, [...process.execArgv, here, '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise<{ url: string; grpcPort: number }>((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.startsWith('bench-ready '));
      if (line) resolve(JSON.parse(line.slice('bench-ready '.length)));
    });
    server.once('exit', (code) => reject(new Error(`the agent exited (${code}) before listening`)));
  });
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS)) as any;
  const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${info.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 << 20, 'grpc.max_receive_message_length': 16 << 20 });
  const digits = new Float32Array(784).map((_, i) => ((i * 31) % 255) / 255);
  const image = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 13) % 255) / 255);
  const cases: Case[] = [{ model: 'digits', shape: [1, 1, 28, 28], data: digits }, { model: 'pool224', shape: [1, 3, 224, 224], data: image }];
  try {
    for (const c of cases) {
      console.log(`\n${c.model}  input [${c.shape.join(', ')}] float32 (${(c.data.byteLength / 1024).toFixed(0)} KiB raw)`);
      console.log(`  ${'protocol'.padEnd(12)} ${'1 client: req/s'.padStart(17)} ${'p50 ms'.padStart(8)}   ${'8 clients: req/s'.padStart(17)} ${'p50 ms'.padStart(8)}`);
      for (const [name, call] of protocols(info.url, info.grpcPort, c, client)) {
        const one = await measure(call, 1, SECONDS);
        const eight = await measure(call, 8, SECONDS);
        console.log(`  ${name.padEnd(12)} ${one.rps.toFixed(0).padStart(17)} ${one.p50.toFixed(3).padStart(8)}   ${eight.rps.toFixed(0).padStart(17)} ${eight.p50.toFixed(3).padStart(8)}`);
      }
    }
  } finally {
    client.close();
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.stdin.end();
    await exited;
  }
}

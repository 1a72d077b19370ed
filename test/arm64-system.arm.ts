// The whole agent on arm64, from the release file (`npm run release -- --arch arm64`), under
// qemu-aarch64: once as a Cortex-A72 (Raspberry Pi 4: NEON, no dot product) and once as
// `-cpu max` (dot product). The daemon from the artifact (its bundled arm64 node, its arm64
// addon, better-sqlite3 and onnxruntime) starts with the sample models, says READY=1 on a
// notify socket, answers /readyz and /v1/status (arch arm64, the kernel variant of the CPU),
// infers on the native engine (logits bit-identical to the host x64 run, with 8-bit and with
// 16-bit activations: the W8A16 steps) and on ONNX Runtime
// (within a small tolerance of the host's fp32), records telemetry in its SQLite buffer and
// drains it over MQTT to a real Mosquitto and the controller running natively on the host,
// acked; SIGTERM stops it with STOPPING=1 and exit 0.
//
// Not part of `npm test` (it needs the cross toolchain, qemu and proot, and minutes of
// emulation): `npm run test:arm` builds the arm64 release when it is missing and runs this file
// after the kernels' differential tests under qemu.
//
// qemu-user shows the program the host's /proc/cpuinfo, on which onnxruntime's arm64 build
// crashes while loading; proot binds an ARM cpuinfo over it (-b FILE:/proc/cpuinfo).
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, spawnAgent, type AgentProcess } from './helpers/agent.js';
import { digitBatch } from './helpers/model-packages.js';
import { writeDigitFolders } from '../scripts/build-digits-int8.js';
import { packModel } from '../tools/compress/pack.js';
import { quantizeFile } from '../tools/compress/quantize.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { notifySocket } from './helpers/notify.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';

t.setTimeout(1_200_000);

const version: string = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
const tarball = path.join(root, `build/release/edge-agent-${version}-linux-arm64.tar.gz`);
const missing = [
  ...(existsSync(tarball) ? [] : [`${path.relative(root, tarball)} (build it: npm run release -- --arch arm64)`]),
  ...['qemu-aarch64', 'proot', 'mosquitto'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
    .map((c) => `${c} (apt-get install qemu-user proot mosquitto)`),
  ...(existsSync('/usr/aarch64-linux-gnu/lib') ? [] : ['/usr/aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu)']),
];

// /proc/cpuinfo of a Raspberry Pi 4 (Cortex-A72), and the same with the dot product (asimddp).
const cpuinfo = (features: string): string => Array.from({ length: 4 }, (_, i) => [
  `processor\t: ${i}`, 'BogoMIPS\t: 108.00', `Features\t: ${features}`, 'CPU implementer\t: 0x41', 'CPU architecture: 8',
  'CPU variant\t: 0x0', 'CPU part\t: 0xd08', 'CPU revision\t: 3', '',
].join('\n')).join('\n') + 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n';
const A72 = 'fp asimd evtstrm crc32 cpuid';
const CPUS = [
  { cpu: 'cortex-a72', features: A72, variant: 'neon' },
  { cpu: 'max', features: `${A72} atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp`, variant: 'dotprod' },
];

const INPUT = digitBatch(3, 2);
const body = { inputs: { input: { shape: INPUT.shape, data: Array.from(INPUT.data) } }, outputEncoding: 'base64' };
type Infer = { backend: string; logits: Float32Array };
async function infer(url: string, model: string): Promise<Infer> {
  const res = await fetch(`${url}/v1/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const j = await res.json() as { backend: string; outputs: { logits: { base64: string } } };
  if (res.status !== 200) throw new Error(`${model}: ${res.status} ${JSON.stringify(j)}`);
  const b = Buffer.from(j.outputs.logits.base64, 'base64');
  return { backend: j.backend, logits: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) };
}

/** The pids below `pid` (proot -> qemu-aarch64 running node). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: string[] = [];
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) kids.push(...readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').split(' ').filter(Boolean));
    } catch { /* gone */ }
    for (const k of kids.map(Number)) { out.push(k); walk(k); }
  };
  walk(pid);
  return out;
}


t.test('the arm64 release under qemu-aarch64: NEON and dot product', async (t) => {
  if (missing.length) {
    t.fail(`cannot run the arm64 system test, missing: ${missing.join('; ')}`);
    return;
  }
  const work = mkdtempSync(path.join(tmpdir(), 'edge-arm64-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const tar = spawnSync('tar', ['-C', work, '-xzf', tarball], { encoding: 'utf8' });
  t.equal(tar.status, 0, `unpacked ${path.basename(tarball)} ${tar.stderr}`);
  const rel = path.join(work, `edge-agent-${version}-linux-arm64`);
  // The digits model with 16-bit activations (W8A16), quantized and packed here by the host's
  // toolkit: the engine's 16-bit steps (native/src/engine/steps_a16*.cc) on arm64.
  const digitData = writeDigitFolders(path.join(work, 'digits-data'));
  const a16File = path.join(work, 'digits-w8a16.onnx');
  await quantizeFile(path.join(rel, 'models/digits-fp32/model.onnx'), a16File, { calib: digitData.calib, perChannel: true, method: 'minmax', format: 'qdq', activationBits: 16, target: 'native' });
  const a16Dir = path.join(work, 'digits-w8a16');
  await packModel(a16File, { name: 'digits-w8a16', version: '1.0.0-w8a16', out: a16Dir, template: path.join(rel, 'models/digits-fp32/manifest.json') });
  const models = (dir: string): Record<string, unknown>[] => [
    { name: 'digits', package: path.join(dir, 'models/digits-int8'), backend: 'native' },
    { name: 'digits-fp32', package: path.join(dir, 'models/digits-fp32'), backend: 'ort' },
    { name: 'digits-w8a16', package: a16Dir, backend: 'native' },
  ];
  const base = { security: { requireSignedPackages: false }, runtime: { threads: 1, warmup: 1 }, log: { level: 'info' } };

  // The host x64 run of the same input: this checkout's agent, the artifact's model files.
  const host = spawnAgent({ ...base, deviceId: 'host-ref', models: models(rel) });
  t.teardown(() => host.kill('SIGKILL'));
  const hostUrl = await host.ready();
  await waitFor(async () => (await fetch(`${hostUrl}/readyz`)).status === 200, { timeoutMs: 60_000, what: 'host agent ready' });
  const ref = { native: await infer(hostUrl, 'digits'), ort: await infer(hostUrl, 'digits-fp32'), a16: await infer(hostUrl, 'digits-w8a16') };
  host.kill('SIGTERM');
  await host.exited();

  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const c = await startController(broker.url, { clientId: 'ctl-arm64' });
  t.teardown(() => c.stop());

  for (const { cpu, features, variant } of CPUS) {
    await t.test(`-cpu ${cpu}`, async (t) => {
      const started = Date.now();
      const dir = mkdtempSync(path.join(work, `${cpu}-`));
      const info = path.join(dir, 'cpuinfo');
      writeFileSync(info, cpuinfo(features));
      const notify = await notifySocket(t, dir);
      const deviceId = `arm64-${cpu}`;
      const agent: AgentProcess = spawnAgent({
        ...base, deviceId, dataDir: path.join(dir, 'data'), models: models(rel),
        mqtt: { url: broker.url, reconnectMinMs: 200, reconnectMaxMs: 2000, backlogSpreadMs: 0 },
      }, {
        node: ['proot', '-q', `qemu-aarch64 -cpu ${cpu} -L /usr/aarch64-linux-gnu`, '-b', `${info}:/proc/cpuinfo`, path.join(rel, 'node/bin/node')],
        cli: path.join(rel, 'dist/agent/cli.js'),
        env: { NOTIFY_SOCKET: notify.path },
      });
      t.teardown(() => { for (const p of descendants(agent.proc.pid!)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } agent.kill('SIGKILL'); });

      const url = await agent.ready(600_000);
      await waitFor(() => notify.messages.some((m) => m.startsWith('READY=1')), { timeoutMs: 600_000, what: () => `READY=1 (log: ${JSON.stringify(agent.logs.slice(-3))} ${agent.stderr()})` });
      const readyAt = Date.now();
      t.pass(`READY=1 after ${((readyAt - started) / 1000).toFixed(1)} s`);
      const readyz = await fetch(`${url}/readyz`);
      t.equal(readyz.status, 200, `/readyz 200: ${JSON.stringify(await readyz.json())}`);
      const status = await (await fetch(`${url}/v1/status`)).json() as Record<string, any>;
      t.equal(status.arch, 'arm64', '/v1/status: arch arm64');
      t.equal(status.kernelVariant, variant, `/v1/status: kernel variant ${status.kernelVariant} (cpuFeatures ${JSON.stringify(status.cpuFeatures)})`);

      const native = await infer(url, 'digits');
      t.equal(native.backend, 'native', 'digits (int8) ran on the native engine');
      t.same(Array.from(native.logits), Array.from(ref.native.logits), `native logits bit-identical to the host x64 run: ${Array.from(native.logits.slice(0, 4)).join(', ')}...`);
      t.ok(Buffer.from(native.logits.buffer).equals(Buffer.from(ref.native.logits.buffer)), 'byte for byte');
      const a16 = await infer(url, 'digits-w8a16');
      t.equal(a16.backend, 'native', 'digits W8A16 (16-bit activations) ran on the native engine');
      t.ok(Buffer.from(a16.logits.buffer).equals(Buffer.from(ref.a16.logits.buffer)), `W8A16 logits bit-identical to the host x64 run: ${Array.from(a16.logits.slice(0, 4)).join(', ')}...`);
      const ort = await infer(url, 'digits-fp32');
      t.equal(ort.backend, 'ort', 'digits-fp32 ran on ONNX Runtime (its arm64 binary)');
      t.equal(ort.logits.length, ref.ort.logits.length, `${ort.logits.length} logits`);
      const worst = Math.max(...Array.from(ort.logits, (v, i) => Math.abs(v - ref.ort.logits[i]!)));
      const scale = Math.max(...Array.from(ref.ort.logits, Math.abs));
      t.ok(worst <= 1e-4 * Math.max(1, scale), `ort fp32 logits within ${worst.toExponential(2)} of the host's (scale ${scale.toFixed(2)})`);

      // Telemetry: into the arm64 better-sqlite3 buffer, then over MQTT to the host controller.
      await waitFor(async () => ((await (await fetch(`${url}/v1/status`)).json()) as any).fleet?.state === 'connected', { timeoutMs: 120_000, what: `${deviceId} connected to the broker` });
      const records = Array.from({ length: 5 }, (_, i) => ({ payload: { cpu, i, logits: Array.from(native.logits.slice(0, 2)) } }));
      const post = await fetch(`${url}/v1/telemetry/arm64`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records }) });
      const { seqs } = await post.json() as { seqs: number[] };
      t.equal(post.status, 201, `recorded seqs ${seqs}`);
      const tele = (await (await fetch(`${url}/v1/status`)).json() as any).telemetry;
      t.ok(tele.file.startsWith(path.join(dir, 'data')) && existsSync(tele.file), `the SQLite buffer ${tele.file} on disk`);
      await waitFor(() => c.store.telemetry(deviceId, { stream: 'arm64' }).length >= seqs.length, { timeoutMs: 120_000, what: () => `${seqs.length} records at the controller` });
      const stored = c.store.telemetry(deviceId, { stream: 'arm64' });
      t.same(stored.map((r) => r.seq), seqs, `the controller stored the ${seqs.length} records, each once`);
      await waitFor(async () => {
        const s = ((await (await fetch(`${url}/v1/status`)).json()) as any).telemetry;
        return s.committedSeq >= Math.max(...seqs) && s.streams.arm64?.depth === 0 && s;
      }, { timeoutMs: 120_000, what: 'the arm64 buffer emptied by the controller ack' });
      t.pass('acked: the records left the arm64 buffer');

      const exited = agent.exited();
      const guest = descendants(agent.proc.pid!);
      t.ok(guest.length > 0, `the emulated node runs as pid ${guest.join(',')} under proot ${agent.proc.pid}`);
      for (const p of guest) process.kill(p, 'SIGTERM');
      const { code } = await exited;
      t.equal(code, 0, 'exit 0 after SIGTERM');
      await waitFor(() => notify.messages.includes('STOPPING=1'), { what: 'STOPPING=1' });
      t.pass(`sd_notify: ${notify.messages.filter((m) => !m.startsWith('WATCHDOG')).map((m) => m.split('\n')[0]).join(' | ')}`);
      t.comment(`-cpu ${cpu}: kernelVariant ${status.kernelVariant}, READY=1 in ${((readyAt - started) / 1000).toFixed(1)} s, whole run ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  }
});

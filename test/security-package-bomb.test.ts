// An unsigned package is refused before anything it lists is read (issue 26, item 2). The
// package: the digits manifest plus a 900 MiB file of zeros listed with its true sha256, no
// signature, packed so the zeros come first; at gzip level 1 it is ~4 MB (under tar's 1000:1
// ratio limit, so only the signature can refuse it early), at level 9 ~1 MB (over it: refused
// while being listed). The agent daemon (a child process, signatures required) is given each,
// from a local path and over MQTT from a controller, and must refuse each with its peak RSS
// (VmHWM from /proc) under 150 MB and no byte of it written under its data dir.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { constants as zc } from 'node:zlib';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { shippedRun } from '../scripts/reliability/shipped.js';
import { deploy } from '../controller/requests.js';
import { spawnAgent, type AgentProcess } from './helpers/agent.js';
import { writeArchive, zeroBombPackage } from './helpers/hostile-packages.js';
import { FP32, copyPackage, tempDir } from './helpers/model-packages.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { waitFor } from './helpers/wait.js';
import { startController } from './fleet-support.js';

t.setTimeout(300_000);

const ZEROS = 900 * 1024 * 1024;
const RSS_LIMIT_MB = 150;
const key = generateKeyPair();
// As the systemd unit runs the agent (its node flags and environment; under tap a child would
// otherwise also carry tap's loader, ~20 MB).
const shipped = shippedRun();
const spawnShipped = (config: Record<string, unknown>): AgentProcess => spawnAgent(config, { env: shipped.env, nodeArgs: shipped.nodeArgs });

function vmHwmMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m![1]) / 1024);
}

/** Bytes of every file under `dir` (what the agent wrote to disk), and the files by path. */
function diskUsage(dir: string): { bytes: number; files: string[] } {
  let bytes = 0;
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else { bytes += statSync(p).size; files.push(path.relative(dir, p)); }
    }
  };
  walk(dir);
  return { bytes, files };
}

const work = tempDir('edge-bomb-');
const bombs = {
  level1: path.join(work, 'zeros-l1.edgepkg'),
  level9: path.join(work, 'zeros-l9.edgepkg'),
  /** The digits package unsigned: the same refusal without the zeros, for the baseline figure. */
  small: path.join(work, 'digits-unsigned.edgepkg'),
};

t.before(async () => {
  await zeroBombPackage(bombs.level1, FP32, ZEROS, 1);
  await zeroBombPackage(bombs.level9, FP32, ZEROS, zc.Z_BEST_COMPRESSION);
  await writeArchive(bombs.small, ['manifest.json', 'model.onnx'].map((n) => ({ name: n, bytes: readFileSync(path.join(FP32, n)) })));
});

let baselineMb = 0;

async function refusedLocally(t: Test, file: string): Promise<number> {
  const agent: AgentProcess = spawnShipped({
    security: { requireSignedPackages: true, trustedKeys: [key.publicKeyPem] },
    log: { level: 'info' },
    models: [{ name: 'digits', package: file, backend: 'ort' }],
  });
  t.teardown(() => agent.kill('SIGKILL'));
  const refusal = await agent.waitForLog((l) => l.msg === 'model package refused', 120_000, 'the package refused');
  const rss = vmHwmMb(agent.proc.pid!);
  const disk = diskUsage(path.join(agent.dir, 'data'));
  t.comment(`${path.basename(file)} (${statSync(file).size} bytes): refused with "${String(refusal.err)}"; agent peak RSS ${rss} MB; ${disk.bytes} bytes under the data dir (${disk.files.join(', ')})`);
  t.ok(rss < RSS_LIMIT_MB, `agent peak RSS ${rss} MB < ${RSS_LIMIT_MB} MB`);
  t.notOk(disk.files.some((f) => f.startsWith('packages')), 'nothing unpacked under dataDir/packages');
  t.ok(disk.bytes < 8 * 1024 * 1024, `no byte of the package on disk (${disk.bytes} bytes under the data dir: the telemetry database)`);
  const st = await (await fetch(`${await agent.ready()}/healthz`)).status;
  t.equal(st, 200, 'the agent keeps running');
  agent.kill('SIGTERM');
  await agent.exited();
  return rss;
}

t.test('baseline: the same agent refusing the small unsigned digits package', async (t) => {
  baselineMb = await refusedLocally(t, bombs.small);
});

t.test('from a local path: the unsigned package is refused for its signature before any listed file is read', async (t) => {
  const rss = await refusedLocally(t, bombs.level1);
  t.comment(`peak RSS ${rss} MB against ${baselineMb} MB refusing the small package`);
});

t.test('from a local path: the level-9 package is refused while being listed, memory bounded', async (t) => {
  await refusedLocally(t, bombs.level9);
});

t.test('over MQTT: the same package deployed by a controller is refused the same way', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const ctl = await startController(broker.url);
  t.teardown(() => ctl.stop());
  // Stored as a (malicious or careless) publisher would: the archive's bytes, chunked.
  const bytes = readFileSync(bombs.level1);
  const { createHash } = await import('node:crypto');
  const chunkSize = 256 * 1024;
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const info = { sha256: sha(bytes), name: 'digits', version: JSON.parse(readFileSync(path.join(FP32, 'manifest.json'), 'utf8')).version as string, size: bytes.length, chunkSize, chunks: chunks.map(sha), signature: null };
  ctl.store.putArtifact(info, (i) => chunks[i]!);
  const agent = spawnShipped({
    deviceId: 'bomb-dev',
    security: { requireSignedPackages: true, trustedKeys: [key.publicKeyPem] },
    log: { level: 'info' },
    mqtt: { url: broker.url, reconnectMinMs: 50, reconnectMaxMs: 500, keepaliveSeconds: 5 },
  });
  t.teardown(() => agent.kill('SIGKILL'));
  await agent.ready();
  await waitFor(() => ctl.store.device('bomb-dev'), { timeoutMs: 15_000, what: 'the device online at the controller' });
  await deploy(ctl.ctl.client!, ctl.store, { device: 'bomb-dev' }, ctl.store.artifact({ sha256: info.sha256 })!);
  const failed = await waitFor(() => {
    const m = ((ctl.store.device('bomb-dev')?.reported?.models ?? []) as { name: string; state: string; reason?: string }[]).find((x) => x.name === 'digits');
    return m?.state === 'failed' ? m : undefined;
  }, { timeoutMs: 120_000, what: 'the device to report the model failed' });
  const rss = vmHwmMb(agent.proc.pid!);
  const disk = diskUsage(path.join(agent.dir, 'data'));
  t.comment(`over MQTT: failed with "${failed.reason}"; agent peak RSS ${rss} MB; ${disk.bytes} bytes under the data dir (${disk.files.join(', ')})`);
  t.match(failed.reason, /signature|not signed|unsigned/i, 'refused for its signature');
  t.ok(rss < RSS_LIMIT_MB, `agent peak RSS ${rss} MB < ${RSS_LIMIT_MB} MB`);
  t.ok(disk.bytes < 8 * 1024 * 1024, `nothing of the package left on disk (${disk.bytes} bytes under the data dir)`);
  t.notOk(disk.files.some((f) => /weights\.bin|model\.onnx/.test(f)), 'no listed file written');
});

t.test('a signed package still installs, and one with a file its manifest does not list is refused', async (t) => {
  const dir = copyPackage(FP32);
  await signPackage(dir, key.privateKeyPem);
  const good = path.join(work, 'good.edgepkg');
  const extra = path.join(work, 'extra.edgepkg');
  const files = ['manifest.json', 'manifest.sig', 'model.onnx'].map((n) => ({ name: n, bytes: readFileSync(path.join(dir, n)) }));
  await writeArchive(good, files);
  await writeArchive(extra, [...files, { name: 'run.sh', bytes: Buffer.from('#!/bin/sh\necho pwned\n') }]);
  for (const [file, ok] of [[good, true], [extra, false]] as const) {
    const agent = spawnShipped({
      security: { requireSignedPackages: true, trustedKeys: [key.publicKeyPem] },
      log: { level: 'info' },
      models: [{ name: 'digits', package: file, backend: 'ort' }],
    });
    t.teardown(() => agent.kill('SIGKILL'));
    if (ok) {
      const url = await agent.ready(60_000);
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { models: { name: string }[] };
      t.ok(models.models.some((m) => m.name === 'digits'), 'the signed archive serves');
    } else {
      const refusal = await agent.waitForLog((l) => l.msg === 'model package refused', 60_000, 'the package refused');
      t.match(String(refusal.err), /file run\.sh is not listed in the manifest/, 'a file the manifest does not list is refused, by name');
      t.notOk(diskUsage(path.join(agent.dir, 'data')).files.some((f) => f.startsWith('packages')), 'nothing unpacked');
    }
    agent.kill('SIGTERM');
    await agent.exited();
  }
});

// `npm start`: a whole fleet on this machine, nothing to install beyond `npm install`.
// An embedded MQTT broker (aedes) and the reference controller (edge-fleet) in this process,
// three agents (devices pi-local-1..3, `--devices N`) with the sample digits model on
// loopback, a small workload of shuffled held-out digits through each agent's local inference API,
// telemetry and drift reports flowing to the controller, rollouts carried out. Prints the
// health URLs and the edge-fleet commands to try. Ctrl-C stops it all.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { createLogger } from '../agent/log.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { startEmbeddedBroker } from '../controller/embedded-broker.js';
import { publishPackage } from '../controller/publish.js';
import { FleetController } from '../controller/serve.js';
import { FleetStore } from '../controller/store.js';
import { DIGIT_PIXELS, heldOutHalves, type DigitSet } from '../tools/edge-model/digits.js';
import { mulberry32 } from '../tools/prng.js';
import { buildReference } from '../agent/drift/reference.js';
import type { DriftSpec } from '../agent/drift/spec.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { RolloutLoop } from '../controller/rollout/loop.js';
import { variantPackage } from '../test/helpers/variant-models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let home = path.join(root, 'var/start-fleet');

/** The preferred port when it is free, else any free one. */
function port(preferred: number): Promise<number> {
  const tryPort = (p: number): Promise<number> => new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(p, '127.0.0.1', () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
  return tryPort(preferred).catch(() => tryPort(0));
}

/** The sample packages, signed with a demo key made on first start (signatures stay on). */
async function samplePackages(): Promise<{ publicKeyPem: string; fp32: string; int8: string }> {
  const keyFile = path.join(home, 'demo-signing-key.json');
  if (!existsSync(keyFile)) {
    mkdirSync(home, { recursive: true });
    const k = generateKeyPair();
    writeFileSync(keyFile, JSON.stringify(k), { mode: 0o600 });
  }
  const keys = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKeyPem: string; privateKeyPem: string };
  const out: Record<string, string> = {};
  for (const name of ['digits-fp32', 'digits-int8']) {
    const dir = path.join(home, 'packages', name);
    rmSync(dir, { recursive: true, force: true });
    cpSync(path.join(root, 'models', name), dir, { recursive: true });
    withDriftReference(dir);
    await signPackage(dir, keys.privateKeyPem);
    out[name] = dir;
  }
  return { publicKeyPem: keys.publicKeyPem, fp32: out['digits-fp32']!, int8: out['digits-int8']! };
}

/**
 * A package built without calibration data has an empty drift reference; the demo copy gets
 * one from the reference half of the held-out digits (input pixels only), so the agent reports
 * drift windows. (Not training digits: the model is more confident on those than on new ones.)
 */
function withDriftReference(dir: string): void {
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { drift?: Record<string, unknown>; inputs: { name: string }[] };
  if (manifest.drift && Object.keys(manifest.drift).length) return;
  const { reference } = heldOutHalves();
  const n = reference.count;
  const input = { dtype: 'float32' as const, shape: [n, 1, 28, 28], data: reference.images.slice(0, n * DIGIT_PIXELS) };
  manifest.drift = buildReference([{ inputs: { [manifest.inputs[0]!.name]: input } }],
    { inputs: [{ kind: 'image', tensor: manifest.inputs[0]!.name, channelAxis: 1 }] } as DriftSpec) as unknown as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
}

interface Options {
  devices: number;
  home: string;
  anyPort: boolean;
  json: boolean;
}

function options(argv: string[]): Options {
  const program = new Command('npm start --')
    .description('a whole fleet on this machine: embedded broker, controller, dashboard, and N agents')
    .option('--devices <n>', 'how many agents (devices) to run, 1 to 16', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 16) throw new InvalidArgumentError(`expected a whole number from 1 to 16, got "${v}"`);
      return n;
    }, 3)
    .option('--home <dir>', 'where the fleet keeps its databases and packages', path.join(root, 'var/start-fleet'))
    .option('--any-port', 'take free ports instead of 1883, 8080.., 8090')
    .option('--json', 'print one JSON line with the URLs when everything is up')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 64));
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ devices: number; home: string; anyPort?: boolean; json?: boolean }>();
  return { devices: o.devices, home: path.resolve(o.home), anyPort: Boolean(o.anyPort), json: Boolean(o.json) };
}

interface Device {
  id: string;
  agent: Agent;
  sent: number;
  correct: number;
  failed: number;
}

/**
 * Held-out digits drawn at random (each device its own seeded order), one request at a time,
 * through the device's local HTTP API. Drawn, not in file order: the set is sorted by digit, and
 * a window of consecutive images is a class-prior shift the drift monitor rightly flags.
 */
async function workload(dev: Device, digits: DigitSet, seed: number, stopping: () => boolean): Promise<void> {
  const draw = mulberry32(seed);
  while (!stopping()) {
    const k = (draw() * digits.count) | 0;
    const data = Array.from(digits.images.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS));
    try {
      const res = await fetch(`${dev.agent.url}/v1/models/digits/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { input: { shape: [1, 1, 28, 28], data } } }),
      });
      const body = await res.json() as { predictions?: { index: number }[] };
      if (!res.ok) dev.failed++;
      else if (body.predictions?.[0]?.index === digits.labels[k]) dev.correct++;
    } catch {
      dev.failed++;
    }
    dev.sent++;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  home = o.home;
  const want = (p: number): Promise<number> => port(o.anyPort ? 0 : p);
  mkdirSync(home, { recursive: true });
  const pk = await samplePackages();
  const broker = await startEmbeddedBroker({ port: await want(1883) });
  const dbFile = path.join(home, 'fleet.db');
  const store = new FleetStore(dbFile);
  const controller = new FleetController(store, { broker: broker.url, clientId: 'edge-fleet-local' });
  await controller.start();
  // A version whose outputs are NaN, published for the rollback demo (signed like the others).
  const badDir = variantPackage('nan', '1.0.1-nan', path.join(home, 'packages'));
  await signPackage(badDir, JSON.parse(readFileSync(path.join(home, 'demo-signing-key.json'), 'utf8')).privateKeyPem);
  const published = [await publishPackage(store, pk.fp32), await publishPackage(store, pk.int8), await publishPackage(store, badDir)];
  // Rollout plans (edge-fleet rollout ...) are carried out here; the dashboard shows them.
  const rollouts = new RolloutLoop(controller, () => undefined, 1000);
  rollouts.start();
  const dashboard = buildDashboard({ store, rollouts: () => rollouts.statuses() });
  const dashboardUrl = await dashboard.listen({ host: '127.0.0.1', port: await want(8090) });

  const devices: Device[] = [];
  for (let i = 1; i <= o.devices; i++) {
    const id = `pi-local-${i}`;
    const config = parseConfig({
      deviceId: id,
      dataDir: path.join(home, i === 1 ? 'agent' : `agent-${i}`),
      log: { level: process.env.EDGE_LOG_LEVEL ?? 'warn' },
      health: { host: '127.0.0.1', port: await want(8079 + i) },
      mqtt: { url: broker.url, groups: ['local'], reconnectMinMs: 200, reconnectMaxMs: 5000 },
      models: [{ name: 'digits', package: pk.fp32 }],
      security: { trustedKeys: [pk.publicKeyPem] },
      // Every inference profiled and windows of 500 (25 s at 20/s): large enough for a verdict
      // (the package's calibration has 500 exactly; a window of 100 at the 1% false-warning
      // target only sees gross shifts), and reports reach the controller within a minute.
      drift: { windowInferences: 500, windowSeconds: 60, sampleEvery: 1 },
      // A short probation, so a rollout stage passes in seconds here (defaults: 200 and 60 s).
      rollout: { probation: { minInferences: 100, minSeconds: 5 } },
    }, 'npm start', root);
    const agent = new Agent(config, { log: createLogger(config.log.level, { deviceId: id }) });
    await agent.start();
    devices.push({ id, agent, sent: 0, correct: 0, failed: 0 });
  }

  // The evaluation half: the packages' drift references were built from the other half.
  const digits = heldOutHalves().evaluation;
  let stopping = false;
  const workloads = devices.map((dev, i) => workload(dev, digits, 1000 + i, () => stopping));

  const fleet = `node bin/edge-fleet.js`;
  const b = `--broker ${broker.url}`;
  const d = `--db ${path.relative(process.cwd(), dbFile) || dbFile}`;
  const int8 = published[1]!;
  const first = devices[0]!;
  if (o.json) {
    process.stdout.write(JSON.stringify({
      ready: true, broker: broker.url, db: dbFile, dashboard: dashboardUrl,
      devices: devices.map((dev) => ({ id: dev.id, url: dev.agent.url })),
      published: published.map((a) => `${a.name}@${a.version}`),
    }) + '\n');
  }
  process.stdout.write([
    '',
    `A fleet of ${devices.length} is running on this machine:`,
    `  MQTT broker (embedded, MQTT 3.1.1)  ${broker.url}`,
    `  controller database                  ${dbFile}`,
    ...devices.map((dev) => `  agent "${dev.id}"`.padEnd(39) + `health ${dev.agent.url}/healthz  ready ${dev.agent.url}/readyz  status page ${dev.agent.url}/`),
    `  workload                             shuffled held-out digits -> POST <agent>/v1/models/digits/infer, 20/s per device; drift windows of 500`,
    `  fleet dashboard                      ${dashboardUrl}/`,
    '',
    'Try, in another terminal (from this folder):',
    `  ${fleet} devices ${d}`,
    `  ${fleet} cmd ${first.id} ping ${b}`,
    `  ${fleet} cmd ${first.id} models.list ${b}`,
    `  ${fleet} telemetry ${first.id} ${d}`,
    `  ${fleet} drift ${d}`,
    `  ${fleet} deploy ${int8.name}@${int8.version} --device ${first.id} ${b} ${d}    (the int8 build, downloaded over MQTT)`,
    `  ${fleet} cmd ${first.id} models.rollback --args '{"name":"digits"}' ${b}`,
    `  ${fleet} rollout ${int8.name}@${int8.version} --group local --stages 1,100 ${d}    (a canary first, then the rest: probation, committed)`,
    `  ${fleet} rollout digits@1.0.1-nan --group local --stages 1,100 ${d}    (a bad version: the canary rolls back at its first answer, the rollout halts)`,
    `  ${fleet} rollout status ${d}`,
    `  curl ${first.agent.url}/v1/status`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n') + '\n');

  // The workload's own figures go through each agent's telemetry buffer like any telemetry.
  const figures = setInterval(() => {
    for (const dev of devices) {
      dev.agent.telemetry.record('workload', { inferences: dev.sent, correct: dev.correct, failed: dev.failed, accuracy: dev.sent ? dev.correct / dev.sent : null });
    }
  }, 2000);
  const progress = setInterval(() => {
    const drift = store.driftReports(1000);
    for (const dev of devices) {
      const records = store.telemetrySummary(dev.id).reduce((n, s) => n + s.records, 0);
      const reports = drift.filter((r) => r.deviceId === dev.id).length;
      const row = store.device(dev.id);
      const version = (row?.status?.models as { name: string; version: string }[] | undefined)?.find((m) => m.name === 'digits')?.version ?? '-';
      process.stdout.write(`[fleet] ${dev.id} ${row?.state ?? 'unknown'}, digits@${version}: ${dev.sent} inferences (${dev.sent ? Math.round((100 * dev.correct) / dev.sent) : 0}% correct, ${dev.failed} failed); controller has ${records} telemetry records, ${reports} drift reports\n`);
    }
  }, 10_000);

  let signals = 0;
  const stop = async (): Promise<void> => {
    if (++signals > 1) process.exit(130);
    stopping = true;
    clearInterval(progress);
    clearInterval(figures);
    rollouts.stop();
    await dashboard.close();
    await Promise.all(workloads);
    for (const dev of devices) await dev.agent.stop();
    await controller.stop();
    await broker.close();
    store.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`npm start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});

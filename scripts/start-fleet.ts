// `npm start`: a whole fleet on this machine, nothing to install beyond `npm install`.
// An embedded MQTT broker (aedes) and the reference controller (edge-fleet) in this process,
// one agent with the sample digits model on loopback, a small workload of held-out digits
// through the agent's local inference API, telemetry and drift reports flowing to the
// controller. Prints the health URL and the edge-fleet commands to try. Ctrl-C stops it all.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { createLogger } from '../agent/log.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { startEmbeddedBroker } from '../controller/embedded-broker.js';
import { publishPackage } from '../controller/publish.js';
import { FleetController } from '../controller/serve.js';
import { FleetStore } from '../controller/store.js';
import { DIGIT_PIXELS, heldOutDigits, trainingDigits } from '../tools/edge-model/digits.js';
import { buildReference } from '../agent/drift/reference.js';
import type { DriftSpec } from '../agent/drift/spec.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { RolloutLoop } from '../controller/rollout/loop.js';
import { variantPackage } from '../test/helpers/variant-models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const home = path.join(root, 'var/start-fleet');
const DEVICE = 'pi-local-1';

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
 * one from 500 training digits (input pixels only), so the agent reports drift windows.
 */
function withDriftReference(dir: string): void {
  const file = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { drift?: Record<string, unknown>; inputs: { name: string }[] };
  if (manifest.drift && Object.keys(manifest.drift).length) return;
  const train = trainingDigits();
  const n = 500;
  const input = { dtype: 'float32' as const, shape: [n, 1, 28, 28], data: train.images.slice(0, n * DIGIT_PIXELS) };
  manifest.drift = buildReference([{ inputs: { [manifest.inputs[0]!.name]: input } }],
    { inputs: [{ kind: 'image', tensor: manifest.inputs[0]!.name, channelAxis: 1 }] } as DriftSpec) as unknown as Record<string, unknown>;
  writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
}

async function main(): Promise<void> {
  mkdirSync(home, { recursive: true });
  const pk = await samplePackages();
  const brokerPort = await port(1883);
  const healthPort = await port(8080);
  const broker = await startEmbeddedBroker({ port: brokerPort });
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
  const dashboardUrl = await dashboard.listen({ host: '127.0.0.1', port: await port(8090) });

  const config = parseConfig({
    deviceId: DEVICE,
    dataDir: path.join(home, 'agent'),
    log: { level: process.env.EDGE_LOG_LEVEL ?? 'warn' },
    health: { host: '127.0.0.1', port: healthPort },
    mqtt: { url: broker.url, groups: ['local'], reconnectMinMs: 200, reconnectMaxMs: 5000 },
    models: [{ name: 'digits', package: pk.fp32 }],
    security: { trustedKeys: [pk.publicKeyPem] },
    // Small drift windows, so drift reports reach the controller within a minute.
    drift: { windowInferences: 200, windowSeconds: 20 },
  }, 'npm start', root);
  const agent = new Agent(config, { log: createLogger(config.log.level, { deviceId: DEVICE }) });
  await agent.start();

  // The workload: held-out digits, one request at a time, through the local HTTP API.
  const digits = heldOutDigits();
  let sent = 0;
  let correct = 0;
  let failed = 0;
  let stopping = false;
  const workload = (async () => {
    while (!stopping) {
      const k = sent % digits.count;
      const data = Array.from(digits.images.subarray(k * DIGIT_PIXELS, (k + 1) * DIGIT_PIXELS));
      try {
        const res = await fetch(`${agent.url}/v1/models/digits/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: { input: { shape: [1, 1, 28, 28], data } } }),
        });
        const body = await res.json() as { predictions?: { index: number }[] };
        if (!res.ok) failed++;
        else if (body.predictions?.[0]?.index === digits.labels[k]) correct++;
      } catch {
        failed++;
      }
      sent++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  const fleet = `node bin/edge-fleet.js`;
  const b = `--broker ${broker.url}`;
  const d = `--db ${path.relative(process.cwd(), dbFile) || dbFile}`;
  const int8 = published[1]!;
  process.stdout.write([
    '',
    'A fleet of one is running on this machine:',
    `  MQTT broker (embedded, MQTT 3.1.1)  ${broker.url}`,
    `  controller database                  ${dbFile}`,
    `  agent "${DEVICE}"                   health ${agent.url}/healthz  ready ${agent.url}/readyz  status page ${agent.url}/`,
    `  workload                             held-out digits -> POST ${agent.url}/v1/models/digits/infer`,
    `  fleet dashboard                      ${dashboardUrl}/`,
    '',
    'Try, in another terminal (from this folder):',
    `  ${fleet} devices ${d}`,
    `  ${fleet} cmd ${DEVICE} ping ${b}`,
    `  ${fleet} cmd ${DEVICE} models.list ${b}`,
    `  ${fleet} telemetry ${DEVICE} ${d}`,
    `  ${fleet} drift ${d}`,
    `  ${fleet} deploy ${int8.name}@${int8.version} --device ${DEVICE} ${b} ${d}    (the int8 build, downloaded over MQTT)`,
    `  ${fleet} cmd ${DEVICE} models.rollback --args '{"name":"digits"}' ${b}`,
    `  ${fleet} rollout ${int8.name}@${int8.version} --group local --stages 100 ${d}    (a staged rollout: probation, then committed)`,
    `  ${fleet} rollout digits@1.0.1-nan --group local --stages 100 ${d}    (a bad version: rolled back at its first answer, rollout halted)`,
    `  ${fleet} rollout status ${d}`,
    `  curl ${agent.url}/v1/status`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n') + '\n');

  // The workload's own figures go through the agent's telemetry buffer like any telemetry.
  const figures = setInterval(() => {
    agent.telemetry.record('workload', { inferences: sent, correct, failed, accuracy: sent ? correct / sent : null });
  }, 2000);
  const progress = setInterval(() => {
    const records = store.telemetrySummary(DEVICE).reduce((n, s) => n + s.records, 0);
    const drift = store.driftReports(1000).filter((r) => r.deviceId === DEVICE).length;
    const dev = store.device(DEVICE);
    const version = (dev?.status?.models as { name: string; version: string }[] | undefined)?.find((m) => m.name === 'digits')?.version ?? '-';
    process.stdout.write(`[fleet] ${DEVICE} ${dev?.state ?? 'unknown'}, digits@${version}: ${sent} inferences (${sent ? Math.round((100 * correct) / sent) : 0}% correct, ${failed} failed); controller has ${records} telemetry records, ${drift} drift reports\n`);
  }, 10_000);

  let signals = 0;
  const stop = async (): Promise<void> => {
    if (++signals > 1) process.exit(130);
    stopping = true;
    clearInterval(progress);
    clearInterval(figures);
    rollouts.stop();
    await dashboard.close();
    await workload;
    await agent.stop();
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

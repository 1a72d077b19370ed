// `npm start`: a whole fleet on this machine, nothing to install beyond `npm install`.
// An embedded MQTT broker (aedes) and the reference controller (edge-fleet) in this process,
// three agents (devices pi-local-1..3, `--devices N`) with the sample digits model on
// loopback, a small workload of shuffled held-out digits through each agent's local inference API,
// telemetry and drift reports flowing to the controller, rollouts carried out. Prints the
// health URLs and the edge-fleet commands to try. Ctrl-C stops it all.
// `npm start -- --demo learning` instead runs the learning loop end to end on a fleet of its own,
// prints what happens with the figures, and exits (scripts/demo/learning.ts).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { createLogger } from '../agent/log.js';
import { signPackage } from '../agent/security/signing.js';
import { startEmbeddedBroker } from '../controller/embedded-broker.js';
import { publishPackage } from '../controller/publish.js';
import { FleetController } from '../controller/serve.js';
import { FleetStore } from '../controller/store.js';
import { DIGIT_PIXELS, heldOutHalves, type DigitSet } from '../tools/edge-model/digits.js';
import { mulberry32 } from '../tools/prng.js';
import { buildDashboard } from '../controller/dashboard/server.js';
import { RolloutLoop } from '../controller/rollout/loop.js';
import { variantPackage } from '../test/helpers/variant-models.js';
import { MAX_DEMO_DEVICES, runLearningDemo } from './demo/learning.js';
import { demoKeys, port, root, samplePackages } from './fleet-local.js';


interface Options {
  devices: number;
  home: string;
  anyPort: boolean;
  json: boolean;
  /** A scripted story instead of a fleet left running: 'learning' (scripts/demo/learning.ts). */
  demo?: 'learning';
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
    .option('--json', 'print one JSON line with the URLs when everything is up (with --demo: the summary as the last line)')
    .addOption(new Option('--demo <story>', 'run a story end to end, print it, and exit: "learning" (drift, field labels, fine-tune, canary with the field gate)').choices(['learning']))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 64));
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ devices: number; home: string; anyPort?: boolean; json?: boolean; demo?: 'learning' }>();
  if (o.demo === 'learning' && o.devices > MAX_DEMO_DEVICES) program.error(`error: --demo learning runs 1 to ${MAX_DEMO_DEVICES} devices (each gets held-out digits of its own), got --devices ${o.devices}`);
  return { devices: o.devices, home: path.resolve(o.home), anyPort: Boolean(o.anyPort), json: Boolean(o.json), ...(o.demo ? { demo: o.demo } : {}) };
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
  if (o.demo === 'learning') process.exit(await runLearningDemo(o));
  const home = o.home;
  const want = (p: number): Promise<number> => port(o.anyPort ? 0 : p);
  mkdirSync(home, { recursive: true });
  const pk = await samplePackages(home);
  const broker = await startEmbeddedBroker({ port: await want(1883) });
  const dbFile = path.join(home, 'fleet.db');
  const store = new FleetStore(dbFile);
  const controller = new FleetController(store, { broker: broker.url, clientId: 'edge-fleet-local' });
  await controller.start();
  // A version whose outputs are NaN, published for the rollback demo (signed like the others).
  const badDir = variantPackage('nan', '1.0.1-nan', path.join(home, 'packages'));
  await signPackage(badDir, demoKeys(home).privateKeyPem);
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

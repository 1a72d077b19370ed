// `npm start -- --demo learning`: the learning loop of issue 21 on one machine, end to end,
// told as it happens. A fleet of agents (embedded broker, controller, SQLite) serves the digits
// model; part-way the devices' input domain shifts (inverted digits, the shift of
// test/learn-digits.test.ts); the drift monitor raises an alert; the capture policy keeps the
// drifting inputs and the application's labels flow to the controller; the dataset is exported,
// a new head fine-tuned, quantized, packed, signed and published; a canary rollout with the
// field-accuracy gate takes it to the fleet; and each device's field accuracy on the shifted
// digits is measured again on the very same images. Exits 0 when the loop closed (the rollout
// completed), 1 otherwise. `--json` adds the figures as one JSON line at the end.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Agent } from '../../agent/agent.js';
import { parseConfig } from '../../agent/config/load.js';
import { createLogger } from '../../agent/log.js';
import { startEmbeddedBroker } from '../../controller/embedded-broker.js';
import { publishPackage } from '../../controller/publish.js';
import { reportsFrom } from '../../controller/rollout/fleet-port.js';
import { DEFAULT_GATES, fieldEvidence, fieldSummary, type FieldEvidence, type Gates } from '../../controller/rollout/plan.js';
import { planRollout } from '../../controller/rollout/driver.js';
import { RolloutLoop } from '../../controller/rollout/loop.js';
import { FleetController } from '../../controller/serve.js';
import { FleetStore } from '../../controller/store.js';
import { heldOutDigits, heldOutHalves, trainingDigits } from '../../tools/edge-model/digits.js';
import { mulberry32 } from '../../tools/prng.js';
import { waitFor } from '../../test/helpers/wait.js';
import { demoKeys, port, root, samplePackages } from '../fleet-local.js';
import { accuracy, emptyTally, invert, same, sendDigits, type Tally } from './field-traffic.js';
import { retrain } from './retrain.js';

export interface DemoOptions { devices: number; home: string; json: boolean }

const MODEL = 'digits';
const FROM = '1.0.0';
const TO = '1.1.0';
/** Per device: plain digits first, then shifted held-out digits (the before/after set), then shifted field traffic. */
const PLAIN = 100;
const MEASURE = 200;
const COLLECT = 600;
/** Drift windows of 100 inferences: the plain digits fill the first, the shifted ones the next two. */
const WINDOW = 100;
const STEP_MS = 120_000;

/**
 * The canary's gates: the standard ones and the field-accuracy gate (controller/rollout/plan.ts):
 * the new version's top-1 accuracy on the devices' labelled requests must beat the version it
 * replaces by 10 points, over at least 100 labelled requests (--gate field>=0.1 --gate labels>=100).
 */
const GATES: Gates = { ...DEFAULT_GATES, minFieldGain: 0.1, minFieldLabels: 100, stageTimeoutSeconds: 120 };
const gateFlags = (g: Gates): string => [`failure<=${g.maxFailureRate}`, `committed>=${g.minCommitted}`, `field>=${g.minFieldGain}`, `labels>=${g.minFieldLabels}`, `timeout=${g.stageTimeoutSeconds}`].map((f) => `--gate ${f}`).join(' ');

const pct = (v: number): string => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : 'n/a');

/** A seeded permutation of 0..n-1 (the held-out digits are sorted by class; a window of them would be a class-prior shift). */
function shuffled(n: number, seed: number): number[] {
  const draw = mulberry32(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = (draw() * (i + 1)) | 0;
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

interface Device { id: string; agent: Agent }

/** Each device gets digits of its own: 100 of the 1,000 plain, 200 of the 2,000 shifted held-out (and some spare), 600 of the 8,000 training digits. */
export const MAX_DEMO_DEVICES = 8;

export async function runLearningDemo(o: DemoOptions): Promise<number> {
  if (o.devices > MAX_DEMO_DEVICES) throw new Error(`--demo learning runs 1 to ${MAX_DEMO_DEVICES} devices (each gets held-out digits of its own), got --devices ${o.devices}`);
  const started = Date.now();
  const say = (line: string): void => { process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`); };
  const home = path.join(o.home, 'demo-learning');
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const pk = await samplePackages(home);
  const keys = demoKeys(home);
  const broker = await startEmbeddedBroker({ port: await port(0) });
  const store = new FleetStore(path.join(home, 'fleet.db'));
  const controller = new FleetController(store, { broker: broker.url, clientId: 'edge-fleet-demo' });
  await controller.start();
  await publishPackage(store, pk.fp32);
  const rollouts = new RolloutLoop(controller, () => undefined, 500);
  rollouts.start();
  const devices: Device[] = [];
  try {
    for (let i = 1; i <= o.devices; i++) {
      const id = `pi-demo-${i}`;
      const config = parseConfig({
        deviceId: id,
        dataDir: path.join(home, `agent-${i}`),
        log: { level: process.env.EDGE_LOG_LEVEL ?? 'error' },
        health: { host: '127.0.0.1', port: 0 },
        mqtt: { url: broker.url, groups: ['local'], reconnectMinMs: 200, reconnectMaxMs: 5000, backlogSpreadMs: 0 },
        // Keeps every input while the drift verdict is an alert (and any labelled answer).
        models: [{ name: MODEL, package: pk.fp32, capture: { whileDrifting: true, maxBytesPerDay: 64 * 1024 * 1024 } }],
        security: { trustedKeys: [pk.publicKeyPem] },
        drift: { windowInferences: WINDOW, windowSeconds: 600, sampleEvery: 1 },
        // One ONNX Runtime thread per session: three agents share this process and the cores.
        runtime: { threads: 1 },
        rollout: { probation: { minInferences: 50, minSeconds: 3 } },
      }, 'npm start -- --demo learning', root);
      const agent = new Agent(config, { log: createLogger(config.log.level, { deviceId: id }) });
      await agent.start();
      devices.push({ id, agent });
    }
    say(`a fleet of ${devices.length} is up: embedded MQTT broker ${broker.url}, controller database ${path.relative(process.cwd(), store.file) || store.file}, devices ${devices.map((d) => d.id).join(', ')} serving ${MODEL}@${FROM}`);
    await waitFor(() => devices.every((d) => store.device(d.id)), { timeoutMs: STEP_MS, intervalMs: 100, what: 'the controller to know every device' });

    // 1. Plain digits: what the model was trained for.
    const plain = heldOutHalves().evaluation;
    const plainOrder = shuffled(plain.count, 11);
    const plainTally = await Promise.all(devices.map((d, i) => sendDigits({ url: d.agent.url, set: plain, indices: plainOrder.slice(i * PLAIN, (i + 1) * PLAIN), map: same })));
    say(`plain digits, ${PLAIN} labelled answers per device: field accuracy ${devices.map((d, i) => `${d.id} ${pct(accuracy(plainTally[i]))}`).join(', ')}`);

    // 2. The shift: from now on the devices see inverted digits (white background, dark strokes).
    const held = heldOutDigits();
    const heldOrder = shuffled(held.count, 12);
    const measureSet = (i: number): number[] => heldOrder.slice(i * MEASURE, (i + 1) * MEASURE);
    const before = await Promise.all(devices.map((d, i) => sendDigits({ url: d.agent.url, set: held, indices: measureSet(i), map: invert })));
    say(`the input domain shifts to inverted digits; field accuracy on ${MEASURE} shifted held-out digits per device, before: ${devices.map((d, i) => `${d.id} ${pct(accuracy(before[i]!.byVersion[FROM]))}`).join(', ')}`);
    const alerts = await waitFor(() => {
      const latest = devices.map((d) => store.driftReports(1000).find((r) => r.deviceId === d.id && r.report.model === MODEL && r.report.version === FROM && r.report.verdict === 'alert'));
      return latest.every(Boolean) ? latest.map((r) => r!) : undefined;
    }, { timeoutMs: STEP_MS, intervalMs: 200, what: 'a drift alert from every device at the controller' });
    const a0 = alerts[0]!.report as unknown as { dataset: { share: number; driftedFeatures: string[]; inputFeatures: number }; window: { size: number } };
    say(`drift alert fired: ${MODEL}@${FROM}, verdict "alert" from ${alerts.length} of ${devices.length} devices (${alerts[0]!.deviceId}: ${a0.dataset.driftedFeatures.length} of ${a0.dataset.inputFeatures} input features drifted in a window of ${a0.window.size})`);

    // 3. Field data: the capture policy keeps the drifting inputs; the application labels 3 answers in 4.
    // The dataset is what arrives from now on (edge-fleet dataset --since): the digits measured
    // before (and after) never train the model that is measured on them.
    const since = Date.now();
    const train = trainingDigits();
    const collected = await Promise.all(devices.map((d, i) => sendDigits({
      url: d.agent.url, set: train, indices: Array.from({ length: COLLECT }, (_, k) => i + k * devices.length), map: invert, labelled: (k) => k % 4 !== 3,
    })));
    const streams = ['examples', 'feedback'];
    await waitFor(() => devices.every((d) => {
      const s = d.agent.telemetry.stats().streams;
      return streams.every((n) => s[n] && s[n]!.depth === 0 && s[n]!.delivered === s[n]!.accepted);
    }), { timeoutMs: STEP_MS, intervalMs: 200, what: 'every device to deliver its examples and labels to the controller' });
    const atController = (stream: string): number => store.telemetrySummary().filter((s) => s.stream === stream && devices.some((d) => d.id === s.deviceId)).reduce((n, s) => n + s.records, 0);
    const examples = atController('examples');
    const labels = atController('feedback');
    say(`${examples} examples and ${labels} labels collected at the controller (the capture policy keeps inputs while drifting; ${collected.reduce((n, t) => n + t.labelled, 0)} of ${collected.reduce((n, t) => n + t.sent, 0)} shifted field answers were labelled by the application)`);

    // 4. Export, fine-tune, quantize, pack, sign, publish.
    const work = path.join(home, 'learn');
    mkdirSync(work, { recursive: true });
    const r = await retrain({ db: controller.db, store, model: MODEL, fromVersion: FROM, toVersion: TO, since, work, privateKeyPem: keys.privateKeyPem, say });

    // 5. A canary rollout with the field-accuracy gate; the devices keep working (and labelling) meanwhile.
    const plan = planRollout(rollouts.store, { model: MODEL, version: TO, previousVersion: FROM, group: 'local', stages: [1, 100], gates: GATES });
    say(`rollout ${plan.id}: ${MODEL}@${TO} to group "local", a canary (1%) then 100% (edge-fleet rollout ${MODEL}@${TO} --group local --stages 1,100 ${gateFlags(GATES)})`);
    let finished = false;
    const during = devices.map(() => emptyTally());
    const spare = held.count - devices.length * MEASURE;
    const traffic = Promise.all(devices.map((d, i) => sendDigits({
      url: d.agent.url, set: held, indices: Array.from({ length: 100_000 }, (_, k) => heldOrder[devices.length * MEASURE + ((k * devices.length + i) % spare)]!),
      map: invert, until: () => finished,
    }, during[i])));
    let seenStage = -1;
    let canaryField: FieldEvidence | undefined;
    const final = await waitFor(() => {
      const st = rollouts.driver.status(plan.id);
      const x = st.rollout;
      const devs = st.stages[x.stageIndex]?.devices.map((d) => d.id) ?? [];
      if (x.stageIndex !== seenStage && x.state === 'running' && devs.length) {
        seenStage = x.stageIndex;
        if (x.stageIndex === 0) say(`stage 1 (${x.stages[0]}%): the canary ${devs.join(', ')} gets ${MODEL}@${TO}; the others keep ${FROM}`);
        else {
          // The gate's figures for the canary's devices as the controller has them now: at least what the decision saw.
          const reports = reportsFrom(store.modelReports(MODEL), store.driftReports(1000), MODEL);
          canaryField = fieldEvidence(x, st.stages[0]!.devices.map((d) => reports.get(d.id)));
          say(`the canary passed its gates (${canaryField ? fieldSummary(canaryField) : 'no field figures'}): proceed to stage ${x.stageIndex + 1} (${x.stages[x.stageIndex]}%)`);
        }
      }
      return x.state === 'running' ? undefined : st;
    }, { timeoutMs: 2 * STEP_MS, intervalMs: 100, what: `rollout ${plan.id} to finish` });
    finished = true;
    await traffic;
    const canary = final.stages[0]!.devices.map((d) => d.id);
    const decision = final.rollout.stageIndex > 0 ? 'proceed' : 'halt';
    say(`field-accuracy gate on the canary (${canary.join(', ')}): ${decision}; rollout ${final.rollout.state}${final.rollout.reason ? ` (${final.rollout.reason})` : ''}` +
      (final.field ? `; over all devices, ${fieldSummary(final.field)}` : ''));

    // 6. After: the same shifted held-out digits as before, on every device.
    const after = final.rollout.state === 'completed'
      ? await Promise.all(devices.map((d, i) => sendDigits({ url: d.agent.url, set: held, indices: measureSet(i), map: invert })))
      : devices.map(() => emptyTally());
    const rows = devices.map((d, i) => ({
      device: d.id, before: accuracy(before[i]!.byVersion[FROM]), after: accuracy(after[i]!.byVersion[TO]), afterLabels: after[i]!.byVersion[TO]?.labelled ?? 0,
    }));
    say(`field accuracy on the same ${MEASURE} shifted held-out digits per device, ${MODEL}@${FROM} -> ${MODEL}@${TO}: ${rows.map((x) => `${x.device} ${pct(x.before)} -> ${pct(x.after)}`).join(', ')}`);
    const mean = (k: 'before' | 'after'): number => rows.reduce((n, x) => n + x[k], 0) / rows.length;
    say(`the loop closed in ${((Date.now() - started) / 1000).toFixed(0)} s: shifted-domain field accuracy ${pct(mean('before'))} -> ${pct(mean('after'))}, from ${r.counts.filter((c) => c.split !== 'unlabelled').reduce((n, c) => n + c.labels, 0)} labelled field examples`);
    if (o.json) {
      const summary = {
        demo: 'learning', model: MODEL, from: FROM, to: TO, devices: rows,
        plain: devices.map((d, i) => ({ device: d.id, accuracy: accuracy(plainTally[i]) })),
        drift: { verdict: 'alert', devices: alerts.map((x) => x.deviceId), version: FROM },
        collected: { examples, labels },
        dataset: Object.fromEntries(r.counts.map((c) => [c.split, { examples: c.examples, labels: c.labels }])),
        finetune: { train: r.finetune.samples.train, validation: r.finetune.samples.validation, before: r.finetune.validationAccuracy.before, after: r.finetune.validationAccuracy.after },
        int8: { agreement: r.int8Agreement, testAccuracy: r.int8TestAccuracy, testSamples: r.testSamples, keyId: r.keyId, published: r.published },
        rollout: {
          id: plan.id, state: final.rollout.state, reason: final.rollout.reason ?? null, decision, canary, gates: GATES,
          canaryField: canaryField ?? null, field: final.field ?? null, during: during.map((t: Tally) => t.byVersion),
        },
        seconds: (Date.now() - started) / 1000,
      };
      process.stdout.write(JSON.stringify(summary) + '\n');
    }
    return final.rollout.state === 'completed' ? 0 : 1;
  } finally {
    rollouts.stop();
    for (const d of devices) await d.agent.stop();
    await controller.stop();
    await broker.close();
    store.close();
  }
}

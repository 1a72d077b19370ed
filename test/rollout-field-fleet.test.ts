// The field-accuracy gate end to end: `edge-fleet serve` (SQLite) and two agent processes on
// a real Mosquitto, rollouts planned with the CLI (`--gate field>=D --gate labels>=N`), labels
// posted by the application with POST /v1/models/:name/feedback. The fleet serves a model that
// names digits 0-4 one too high. A candidate that answers one class whatever the input is
// shadowed by the first stage, scored on the same labelled digits as the version serving, and
// halted and rolled back; the original digits model, better on those labels, passes every
// stage. Needs dist/ (npm run build:ts).
import t from 'tap';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { FleetStore } from '../controller/store.js';
import { RolloutStore } from '../controller/rollout/store.js';
import type { FieldEvidence } from '../controller/rollout/plan.js';
import { root, spawnAgent, type AgentProcess } from './helpers/agent.js';
import { destroyMosquitto, startMosquitto } from './helpers/mosquitto.js';
import { spawnServe, serveReady } from './helpers/fleet-serve.js';
import { mixedDigit, tempDir } from './helpers/model-packages.js';
import { CONSTANT_CLASS, variantPackage } from './helpers/variant-models.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(300_000);

const run = promisify(execFile);
const cli = (args: string[]): Promise<string> => run(process.execPath, [path.join(root, 'dist/controller/cli.js'), ...args], { timeout: 60_000 }).then((r) => r.stdout);

/** The device's shadow gate needs this many shadowed requests before it promotes a candidate. */
const SHADOW_SAMPLES = 40;
/** Labelled requests per canary while the worse candidate is in shadow: fewer than SHADOW_SAMPLES, so only the controller's gate can end it. */
const CANARY_LABELS = 35;
const LABELS = 30;

t.test('the field gate halts a worse candidate and passes a better one', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => destroyMosquitto(broker));
  const db = path.join(tempDir('edge-field-fleet-'), 'fleet.db');
  const serve = spawnServe(['--db', db, '--broker', broker.url, '--id', 'field-serve']);
  t.teardown(() => serve.proc.kill('SIGKILL'));
  await serveReady(serve);
  const store = new FleetStore(db);
  t.teardown(() => store.close());
  const rollouts = new RolloutStore(store.db);

  const baseline = variantPackage('rotated', '1.0.0-rotated', tempDir());
  const agents = new Map<string, { proc: AgentProcess; url: string }>();
  for (const id of ['field-pi-0', 'field-pi-1']) {
    const proc = spawnAgent({
      deviceId: id,
      models: [{ name: 'digits', package: baseline, backend: 'ort' }],
      security: { requireSignedPackages: false },
      mqtt: { url: broker.url, groups: ['lab'], reconnectMinMs: 50, reconnectMaxMs: 500 },
      // Latency is not under test here (rollout-probation tests that gate): on a loaded CI machine a
      // candidate's p99 over a few inferences can exceed 3x its predecessor's and halt the rollout.
      rollout: { shadow: { fraction: 1, minAgreement: 0, minSamples: SHADOW_SAMPLES }, probation: { minInferences: 5, minSeconds: 0, maxLatencyRatio: 1000 } },
      log: { level: 'info' },
    });
    t.teardown(() => proc.kill('SIGKILL'));
    agents.set(id, { proc, url: await proc.ready() });
  }
  await waitFor(() => store.groupMembers('lab').length === 2, { timeoutMs: 30_000, what: 'two devices in group lab' });
  const reported = (id: string): { version: string; state: string; reason?: string } | undefined =>
    ((store.device(id)?.reported?.models as { name: string; version: string; state: string; reason?: string }[] | undefined) ?? []).find((m) => m.name === 'digits');

  let next = 0;
  /** One digit answered by `id`, then labelled with its true class; what answered and whether it was right. */
  const labelled = async (id: string): Promise<{ version: string; right: boolean }> => {
    const d = mixedDigit(next++);
    const url = agents.get(id)!.url;
    const res = await fetch(`${url}/v1/models/digits/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { input: { shape: d.shape, data: Array.from(d.data) } } }) });
    if (!res.ok) throw new Error(`${id} infer: ${res.status} ${await res.text()}`);
    const answer = (await res.json()) as { id: string; version: string; predictions: { index: number }[] };
    const fb = await fetch(`${url}/v1/models/digits/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: answer.id, label: d.labels[0] }) });
    if (fb.status !== 200) throw new Error(`${id} feedback: ${fb.status} ${await fb.text()}`);
    return { version: answer.version, right: answer.predictions[0]!.index === d.labels[0] };
  };

  await t.test('a candidate that answers one class is halted at the first stage and rolled back', async (t) => {
    await cli(['publish', variantPackage('constant', '2.0.0-constant', tempDir()), '--db', db]);
    const plan = JSON.parse(await cli(['rollout', 'digits@2.0.0-constant', '--db', db, '--group', 'lab', '--stages', '50,100',
      '--gate', 'field>=0', '--gate', `labels>=${LABELS}`, '--gate', 'timeout=240', '--json'])) as { id: string; gates: Record<string, unknown> };
    t.match(plan.gates, { minFieldGain: 0, minFieldLabels: LABELS }, 'the CLI read the field gates');
    const canaries = await waitFor(() => {
      const a = rollouts.assignments(plan.id).map((x) => x.deviceId);
      return a.length && a.every((d) => reported(d)?.version === '2.0.0-constant' && reported(d)?.state === 'shadow') ? a : undefined;
    }, { timeoutMs: 60_000, what: () => `the canaries shadow 2.0.0-constant (${JSON.stringify(rollouts.assignments(plan.id))})` });

    let baselineRight = 0;
    for (let i = 0; i < CANARY_LABELS; i++) {
      for (const id of canaries) {
        const a = await labelled(id);
        t.equal(a.version, '1.0.0-rotated', 'the serving version answers; the candidate only shadows');
        if (a.right) baselineRight++;
      }
    }
    await waitFor(() => rollouts.get(plan.id)!.state === 'halted', { timeoutMs: 60_000, what: () => `rollout halted: ${JSON.stringify(rollouts.get(plan.id))}` });
    const halted = rollouts.get(plan.id)!;
    t.equal(halted.stageIndex, 0, 'halted at the first stage');
    t.match(halted.reason, /field accuracy of digits@2\.0\.0-constant is 0\.\d+ against 0\.\d+ for 1\.0\.0-rotated: gain -0\.\d+ < 0 on \d+ labelled requests \(paired\)/);
    const field = (rollouts.events(plan.id).find((e) => e.kind === 'halted')?.detail as { evidence?: { field?: FieldEvidence } } | undefined)?.evidence?.field;
    t.ok(field, `the halt event keeps the evidence (${JSON.stringify(rollouts.events(plan.id))})`);
    if (field) {
      t.ok(field.labels >= LABELS && field.labels <= CANARY_LABELS * canaries.length, `counted ${field.labels} labelled requests`);
      t.equal(field.candidate.labelled, field.baseline.labelled, 'both versions scored on the same requests');
      t.equal(field.paired, true, 'a paired comparison');
      t.ok(field.candidate.accuracy! < 0.3, `the constant candidate is right on few (${field.candidate.accuracy}, digits of class ${CONSTANT_CLASS} only)`);
      t.ok(field.baseline.accuracy! > 0.3, `the serving version on more (${field.baseline.accuracy}; ${baselineRight} of ${CANARY_LABELS * canaries.length} as the test counted)`);
      t.equal(field.gain, field.candidate.accuracy! - field.baseline.accuracy!, 'the gain');
    }
    await waitFor(() => canaries.every((d) => reported(d)?.state === 'rolled_back'), { timeoutMs: 30_000, what: () => `the canaries report 2.0.0-constant rolled back (${JSON.stringify(canaries.map(reported))})` });
    for (const id of canaries) t.equal((await labelled(id)).version, '1.0.0-rotated', `${id} serves the version it had`);
    t.equal(rollouts.assignments(plan.id).length, canaries.length, 'no device past the first stage was told to run 2.0.0-constant');
    const status = await cli(['rollout', 'status', plan.id, '--db', db]);
    t.match(status, /field accuracy: 2\.0\.0-constant 0\.\d+ vs 1\.0\.0-rotated 0\.\d+, gain -0\.\d+ \(needs >= 0\), \d+ labelled requests \(30 needed\), paired/, `rollout status shows the figures:\n${status}`);
  });

  await t.test('the original digits model, better on the same kind of labels, passes every stage', async (t) => {
    await cli(['publish', variantPackage('good', '1.1.0', tempDir()), '--db', db]);
    const plan = JSON.parse(await cli(['rollout', 'digits@1.1.0', '--db', db, '--group', 'lab', '--stages', '50,100',
      '--gate', 'field>=0.1', '--gate', `labels>=${LABELS}`, '--gate', 'timeout=240', '--json'])) as { id: string };
    // Labelled traffic on every device until the rollout ends: shadow samples, probation, labels.
    let traffic = true;
    const drive = (async () => {
      while (traffic) {
        for (const id of agents.keys()) await labelled(id);
        await new Promise((r) => setTimeout(r, 10)); // pacing of the workload, not a wait for a condition
      }
    })();
    t.teardown(async () => { traffic = false; await drive; });
    await waitFor(() => ['completed', 'halted'].includes(rollouts.get(plan.id)!.state), { timeoutMs: 180_000, intervalMs: 250, what: () => `rollout 1.1.0 done: ${JSON.stringify(rollouts.get(plan.id))}` });
    const done = rollouts.get(plan.id)!;
    t.equal(done.state, 'completed', `completed (${done.reason ?? ''})`);
    await waitFor(async () => {
      for (const id of agents.keys()) if ((await labelled(id)).version !== '1.1.0') return false;
      return true;
    }, { timeoutMs: 60_000, what: 'every device serves 1.1.0' });
    traffic = false;
    await drive;
    const st = JSON.parse(await cli(['rollout', 'status', plan.id, '--db', db, '--json'])) as { field?: FieldEvidence; fieldSummary?: string }[];
    const field = st[0]!.field!;
    t.ok(field.labels >= LABELS, `labels: ${field.labels}`);
    t.equal(field.paired, true, 'paired: the earlier candidate\'s pairs on the canary are not counted');
    t.ok(field.gain! >= 0.1, `gain ${field.gain} >= 0.1 (${field.candidate.accuracy} vs ${field.baseline.accuracy})`);
    t.match(st[0]!.fieldSummary, /field accuracy: 1\.1\.0 [01]\.\d{3} vs 1\.0\.0-rotated/);
  });
});

// Model faults under a steady inference load: an update that fails verification (a file
// changed after its hash was recorded), one that outputs NaN (rolled back at its first
// answer), and one that kills the process while loading (EDGE_FAULT_CRASH_ON_LOAD; the
// supervisor restarts it, the boot counter sees the crash loop and the committed version
// serves). The agent keeps serving the last good version throughout; failed requests
// besides the expected ones (the NaN answer, connection refused while the process is dead)
// must be 0.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RolloutStore } from '../../../agent/rollout/rollout-store.js';
import { copyPackage, FP32, FP32_VERSION, startAgent, tempDir } from '../../../test/helpers/model-packages.js';
import { variantPackage } from '../../../test/helpers/variant-models.js';
import { spawnAgentWithFile, writeConfig } from '../../../test/helpers/agent.js';
import { shippedRun } from '../shipped.js';
import { waitFor } from '../../../test/helpers/wait.js';
import type { Figures } from '../figures.js';
import type { ScenarioOptions } from '../rig.js';
import { InferenceLoad } from '../load.js';
import { MemorySampler } from '../procstat.js';

export interface ModelFaultsFigures extends Figures {
  unexpectedFailures: number;
  nanAnswers: number;
  servedBy: Record<string, number>;
  verifyRefused: boolean;
  crashRestarts: number;
}

const rollout = { probation: { minInferences: 1_000_000, minSeconds: 0, maxRestarts: 1 } };

export async function run(opts: ScenarioOptions): Promise<ModelFaultsFigures> {
  const rate = Math.max(5, Math.round(opts.rate / 5));
  // 1 + 2: verification failure and NaN, on an agent in this process (real HTTP).
  const a = await startAgent({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], rollout, runtime: { threads: 1 } });
  const sampler = new MemorySampler(process.pid).start();
  const inf = new InferenceLoad(() => a.url, rate).start();
  let verifyRefused = false;
  let nanAnswers = 0;
  try {
    await new Promise((r) => setTimeout(r, opts.durationMs / 4));
    const tampered = copyPackage(FP32, tempDir());
    const m = JSON.parse(readFileSync(path.join(tampered, 'manifest.json'), 'utf8'));
    m.version = '9.0.0-tampered';
    writeFileSync(path.join(tampered, 'manifest.json'), JSON.stringify(m));
    const bytes = readFileSync(path.join(tampered, 'model.onnx'));
    bytes[bytes.length - 1] ^= 0xff; // changed after hashing: the package must fail verification
    writeFileSync(path.join(tampered, 'model.onnx'), bytes);
    await a.agent.rollouts.activate('digits', tampered).then(() => undefined, () => { verifyRefused = true; });
    await new Promise((r) => setTimeout(r, opts.durationMs / 4));
    const before = inf.versions.get('2.0.0-nan') ?? 0;
    await a.agent.rollouts.activate('digits', variantPackage('nan', '2.0.0-nan', tempDir()));
    await waitFor(() => !(a.agent.rollouts.status() as Record<string, any>).digits.candidate, { timeoutMs: 30_000, what: 'the NaN version rolled back' });
    await new Promise((r) => setTimeout(r, opts.durationMs / 4));
    nanAnswers = (inf.versions.get('2.0.0-nan') ?? 0) - before;
  } finally {
    await inf.stop();
    sampler.stop();
    await a.stop();
  }

  // 3: crash on load, in a real child process under a supervisor loop.
  const { dir, file } = writeConfig({ models: [{ name: 'digits', package: FP32, backend: 'ort' }], security: { requireSignedPackages: false }, rollout, runtime: { threads: 1 } });
  const shipped = shippedRun(); // as the systemd unit runs the agent
  const first = spawnAgentWithFile(file, dir, { env: shipped.env, nodeArgs: shipped.nodeArgs });
  await first.ready(60_000);
  first.kill('SIGTERM');
  await first.exited();
  const crashing = variantPackage('good', '4.0.0-crash', tempDir());
  const store = new RolloutStore(path.join(dir, 'data'));
  store.put({ model: 'digits', active: { version: FP32_VERSION, dir: FP32 }, candidate: { version: '4.0.0-crash', dir: crashing, phase: 'probation', boots: 0, since: Date.now() } });
  store.close();
  let url = '';
  let crashRestarts = 0;
  let child: ReturnType<typeof spawnAgentWithFile> | undefined;
  const env = { EDGE_FAULT_CRASH_ON_LOAD: 'digits@4.0.0-crash' };
  for (let start = 0; start < 6 && !url; start++) {
    child = spawnAgentWithFile(file, dir, { env: { ...shipped.env, ...env }, nodeArgs: shipped.nodeArgs });
    const outcome = await Promise.race([child.ready(60_000).then((u) => ({ url: u })), child.exited().then((e) => ({ exit: e }))]);
    if ('url' in outcome) url = outcome.url;
    else crashRestarts++;
  }
  if (!url) throw new Error('the agent did not come back after the crash-on-load candidate');
  const childSampler = new MemorySampler(child!.proc.pid!).start();
  const inf2 = new InferenceLoad(() => url, rate).start();
  await new Promise((r) => setTimeout(r, opts.durationMs / 4));
  await inf2.stop();
  childSampler.stop();
  child!.kill('SIGTERM');
  await child!.exited();

  const servedBy: Record<string, number> = {};
  for (const l of [inf, inf2]) for (const [v, n] of l.versions) servedBy[v] = (servedBy[v] ?? 0) + n;
  const unexpectedFailures = inf.failed() + inf2.failed();
  const p99 = Math.max(inf.p99() ?? 0, inf2.p99() ?? 0);
  return {
    scenario: 'model-faults', load: `${rate} inf/s`, faults: 3, accepted: 0, delivered: 0, evicted: 0, lost: 0, duplicates: 0,
    peakRssMb: Math.round((childSampler.peakRssKb / 1024) * 10) / 10, p99Ms: p99,
    notes: `verification failure ${verifyRefused ? 'refused' : 'NOT refused'}; NaN answers before rollback ${nanAnswers}; crash-on-load: ${crashRestarts} deaths, then serving ${FP32_VERSION}; failed requests besides those: ${unexpectedFailures}; served by ${JSON.stringify(servedBy)} (no telemetry load here; RSS is the restarted child's)`,
    unexpectedFailures, nanAnswers, servedBy, verifyRefused, crashRestarts,
  };
}

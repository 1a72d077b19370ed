// Overload: more inference requests than the device serves. The per-model queue
// (runtime.queueLimit) answers 429 beyond its limit; memory stays bounded; the p99 of admitted
// requests is compared with the unloaded p99 measured first in the same run (the ratio is the
// figure; the issue asks for at most 2x).
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { inferOnce, InferenceLoad } from '../load.js';
import { percentile } from '../procstat.js';

export interface OverloadFigures extends Figures {
  unloadedP99Ms: number;
  admittedP99Ms: number;
  ratio: number;
  rejected: number;
  admitted: number;
  idleRssMb: number;
}

export async function run(opts: ScenarioOptions & { queueLimit?: number; offered?: number }): Promise<OverloadFigures> {
  const queueLimit = opts.queueLimit ?? 8;
  const rig = await new Rig({ agent: { runtime: { threads: 1, queueLimit } } }).start();
  try {
    // Unloaded: one request at a time, for a fifth of the time.
    const solo: number[] = [];
    const until = Date.now() + opts.durationMs / 5;
    while (Date.now() < until || solo.length < 50) {
      const r = await inferOnce(rig.url);
      if (r.status !== 200) throw new Error(`unloaded inference failed: ${r.status} ${JSON.stringify(r.body)}`);
      solo.push(r.ms);
    }
    const idleRss = rig.samplers[0]!.samples.at(-1)!.rssKb / 1024;
    // Offered: three times what one client in a closed loop gets served (the device's rate
    // for this model here and now), so the queue is always full but the HTTP intake is not
    // the only thing measured.
    const soloRate = (solo.length * 1000) / solo.reduce((a, b) => a + b, 0);
    const offered = opts.offered ?? Math.ceil(3 * soloRate);
    const inf = new InferenceLoad(() => rig.url, offered).start();
    await new Promise((r) => setTimeout(r, (opts.durationMs * 4) / 5));
    await inf.stop();
    const unloaded = percentile(solo, 99);
    const admitted = inf.p99() ?? 0;
    const ratio = Math.round((admitted / unloaded) * 100) / 100;
    const served = inf.count(200);
    const f = await figuresOf(rig, {
      scenario: 'overload', load: `${offered} inf/s offered (3x), queueLimit ${queueLimit}`, faults: 0, p99Ms: admitted,
      notes: `served ${served} (${Math.round(served / ((opts.durationMs * 4) / 5 / 1000))}/s), 429: ${inf.count(429)}, other: ${inf.failed([429])}; unloaded p99 ${unloaded.toFixed(1)} ms, admitted p99 ${admitted.toFixed(1)} ms: ratio ${ratio}x (target <= 2x)`,
    });
    return { ...f, unloadedP99Ms: unloaded, admittedP99Ms: admitted, ratio, rejected: inf.count(429), admitted: served, idleRssMb: Math.round(idleRss * 10) / 10 };
  } finally {
    await rig.stop();
  }
}

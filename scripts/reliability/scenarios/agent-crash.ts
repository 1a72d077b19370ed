// Agent crash: SIGKILL at random moments under load, restarted at once by the supervisor loop
// (as systemd's Restart=always would). Every record answered 201 before a kill must arrive.
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';

export async function run(opts: ScenarioOptions & { minGapMs?: number; maxGapMs?: number; minKills?: number }): Promise<Figures> {
  const rig = await new Rig({ persistence: true }).start();
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    const deadline = Date.now() + opts.durationMs;
    const min = opts.minGapMs ?? 1000;
    const max = opts.maxGapMs ?? 4000;
    // The duration, and at least minKills kills (a restart on a loaded machine can take most of
    // a short run).
    while (Date.now() < deadline || rig.restarts < (opts.minKills ?? 0)) {
      await new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
      await rig.crashAndRestart();
    }
    await tel.stop();
    await inf.stop();
    return await figuresOf(rig, {
      scenario: 'agent-crash', load: `${opts.rate} rec/s + ${inf.rate} inf/s`, faults: rig.restarts, p99Ms: inf.p99(), sent: tel.sent,
      notes: `SIGKILL every ${min / 1000}-${max / 1000} s; ${tel.refused} records refused while down (not accepted); inference ${inf.summary()}`,
    });
  } finally {
    await rig.stop();
  }
}

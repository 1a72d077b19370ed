// Broker outage: the broker is stopped and started again repeatedly while the agent serves
// inference and records telemetry at a steady rate. The broker keeps its persistence file (as
// a production broker does), so the controller's session survives each outage.
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';

export async function run(opts: ScenarioOptions & { downMs?: number; upMs?: number }): Promise<Figures> {
  const rig = await new Rig({ persistence: true }).start();
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    const deadline = Date.now() + opts.durationMs;
    const down = opts.downMs ?? 3000;
    const up = opts.upMs ?? 2000;
    let outages = 0;
    while (Date.now() + down + up <= deadline || outages < (opts.minFaults ?? 0)) {
      await new Promise((r) => setTimeout(r, up));
      await rig.broker.stop();
      outages++;
      await new Promise((r) => setTimeout(r, down));
      await rig.broker.restart();
    }
    await tel.stop();
    await inf.stop();
    return await figuresOf(rig, {
      scenario: 'broker-outage', load: `${opts.rate} rec/s + ${inf.rate} inf/s`, faults: outages, p99Ms: inf.p99(), sent: tel.sent,
      notes: `outages of ${down / 1000} s every ${(down + up) / 1000} s; inference ${inf.summary()}`,
    });
  } finally {
    await rig.stop();
  }
}

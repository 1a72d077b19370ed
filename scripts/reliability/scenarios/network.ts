// A network that stalls and drops: a TCP proxy between agent and broker pauses the stream
// (both directions) and cuts every connection, in turn, under load.
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';
import { FlakyProxy } from '../proxy.js';

export async function run(opts: ScenarioOptions & { stallMs?: number }): Promise<Figures> {
  let proxy!: FlakyProxy;
  const rig = await new Rig({
    persistence: true,
    brokerUrl: async (b) => {
      proxy = new FlakyProxy(b.port);
      return proxy.listen();
    },
  }).start();
  rig.onStop(() => proxy.close());
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    const deadline = Date.now() + opts.durationMs;
    const stall = opts.stallMs ?? 3000;
    let i = 0;
    while (Date.now() + stall + 1500 <= deadline || i < (opts.minFaults ?? 0)) {
      await new Promise((r) => setTimeout(r, 1500));
      if (i++ % 2 === 0) {
        proxy.stall('both');
        await new Promise((r) => setTimeout(r, stall));
        proxy.resume();
      } else {
        proxy.cut();
      }
    }
    await tel.stop();
    await inf.stop();
    return await figuresOf(rig, {
      scenario: 'network', load: `${opts.rate} rec/s + ${inf.rate} inf/s`, faults: proxy.stalls + proxy.cuts, p99Ms: inf.p99(), sent: tel.sent,
      notes: `${proxy.stalls} stalls of ${stall / 1000} s, ${proxy.cuts} cuts; inference ${inf.summary()}`,
    });
  } finally {
    await rig.stop();
  }
}

// Slow consumer: the controller stops acknowledging. Two faults in turn, each for half the
// time: (1) the controller is down and the broker queues for its persistent session; (2) a
// proxy holds back everything the broker sends to the agent, so PUBACKs never come and the
// agent's in-flight window fills. The buffer has a small budget (telemetry.maxBytes 512 KB);
// its memory stays bounded and it obeys the budget (evicting by policy, counted).
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';
import { FlakyProxy } from '../proxy.js';

export interface SlowConsumerFigures extends Figures {
  maxBufferBytes: number;
  budgetBytes: number;
}

export async function run(opts: ScenarioOptions & { phases?: ('controller-down' | 'puback-held')[] }): Promise<SlowConsumerFigures> {
  const phases = opts.phases ?? ['controller-down', 'puback-held'];
  const phaseMs = opts.durationMs / phases.length;
  const budgetBytes = 512 * 1024;
  let proxy!: FlakyProxy;
  const rig = await new Rig({
    persistence: true,
    agent: { telemetry: { maxBytes: budgetBytes } },
    brokerUrl: async (b) => {
      proxy = new FlakyProxy(b.port);
      return proxy.listen();
    },
  }).start();
  rig.onStop(() => proxy.close());
  let maxBufferBytes = 0;
  const watch = setInterval(() => {
    void rig.telemetryStats().then((s) => { maxBufferBytes = Math.max(maxBufferBytes, s.bytes); }, () => undefined);
  }, 250);
  try {
    const tel = new TelemetryLoad(() => rig.url, opts.rate * 2, ['samples', 'metrics'], 512).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    if (phases.includes('controller-down')) {
      await rig.stopController();
      await new Promise((r) => setTimeout(r, phaseMs));
      await rig.startController();
    }
    if (phases.includes('puback-held')) {
      proxy.stall('down');
      await new Promise((r) => setTimeout(r, phaseMs));
      proxy.resume();
    }
    await tel.stop();
    await inf.stop();
    const f = await figuresOf(rig, {
      scenario: 'slow-consumer', load: `${opts.rate * 2} rec/s of 0.5 KB + ${inf.rate} inf/s`, faults: phases.length, p99Ms: inf.p99(), sent: tel.sent,
      notes: `${phases.map((p) => `${p} ${phaseMs / 1000} s`).join(', then ')}; buffer peak ${Math.round(maxBufferBytes / 1024)} KB of a ${budgetBytes / 1024} KB budget; inference ${inf.summary()}`,
    }, 120_000);
    return { ...f, maxBufferBytes, budgetBytes };
  } finally {
    clearInterval(watch);
    await rig.stop();
  }
}

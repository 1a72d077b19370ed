// Large records across a broker outage (issue 17): records of 1..64 KB of random bytes in
// base64, which gzip cannot shrink, mixed into a stream of small records, while the broker is
// stopped and started repeatedly. Every such record is far below mqtt.batchMaxBytes (256 KiB),
// so none may be quarantined: the drain's token bucket runs low right after each backlog, and
// that budget must only decide how much goes now, never which record is "too large".
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { IncompressibleLoad, TelemetryLoad } from '../load.js';

export async function run(opts: ScenarioOptions & { downMs?: number; upMs?: number }): Promise<Figures> {
  // The drain rate at twice the load: each backlog after an outage empties the token bucket,
  // which is when the bucket-shaped lease size used to be read as the message limit.
  const drainRate = Math.max(20, opts.rate * 2);
  const rig = await new Rig({ persistence: true, agent: { mqtt: { drainRecordsPerSecond: drainRate } } }).start();
  try {
    // Half the rate as small records on their own streams, half mixed with the large ones.
    const small = new TelemetryLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 2))).start();
    const mixed = new IncompressibleLoad(() => rig.url, Math.max(10, Math.round(opts.rate / 2))).start();
    const deadline = Date.now() + opts.durationMs;
    const down = opts.downMs ?? 3000;
    const up = opts.upMs ?? 2000;
    let outages = 0;
    while (Date.now() + down + up <= deadline) {
      await new Promise((r) => setTimeout(r, up));
      await rig.broker.stop();
      outages++;
      opts.log?.(`outage ${outages}: ${mixed.large} large records accepted so far`);
      await new Promise((r) => setTimeout(r, down));
      await rig.broker.restart();
    }
    await small.stop();
    await mixed.stop();
    const sent = new Map([...small.sent, ...mixed.sent]);
    const refused = small.refused + mixed.refused;
    return await figuresOf(rig, {
      scenario: 'large-records', load: `${small.rate + mixed.rate} rec/s, 1 in ${mixed.smallPerLarge + 1} of 1-64 KB incompressible`, faults: outages, sent,
      notes: `mqtt.drainRecordsPerSecond ${drainRate}; ${mixed.large} large records (${(mixed.largeBytes / 1024 / 1024).toFixed(1)} MB) answered 201; outages of ${down / 1000} s every ${(down + up) / 1000} s${refused ? `; ${refused} refused (not accepted)` : ''}`,
    }, 120_000);
  } finally {
    await rig.stop();
  }
}

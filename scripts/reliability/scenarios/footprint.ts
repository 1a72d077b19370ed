// Footprint: time from process start to ready (the log line written in the tick that sends
// READY=1), RSS and PSS idle and under inference load, with the digits model on each backend
// (ort: digits-fp32; native: digits-int8), and whether ONNX Runtime got loaded at all. The
// agent runs with the node flags and environment of deploy/edge-agent.service; idle is steady
// idle (after V8's first major collection after ready), with the figure 1 s after ready beside it.
import { measureFootprint, type FootprintResult } from '../footprint.js';
import type { Figures } from '../figures.js';
import type { ScenarioOptions } from '../rig.js';
import { inferOnce } from '../load.js';
import { percentile } from '../procstat.js';
import { FP32, INT8 } from '../../../test/helpers/model-packages.js';

export interface FootprintFigures extends Figures {
  result: FootprintResult;
}

export async function run(opts: ScenarioOptions): Promise<FootprintFigures[]> {
  const rows: FootprintFigures[] = [];
  for (const [label, pkg, backend] of [['ort digits-fp32', FP32, 'ort'], ['native digits-int8', INT8, 'native']] as const) {
    const lat: number[] = [];
    let refused = 0;
    const result = await measureFootprint({
      label,
      config: { models: [{ name: 'digits', package: pkg, backend }], security: { requireSignedPackages: false }, runtime: { threads: 1 } },
      loadMs: Math.max(2000, opts.durationMs / 2),
      load: async (url, ms) => {
        const end = Date.now() + ms;
        // four clients in a closed loop: the device busy, not flooded
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (Date.now() < end) {
            const r = await inferOnce(url);
            // 429: admission control turned the request away (the busy device's answer); counted, not served
            if (r.status === 429) refused++;
            else if (r.status !== 200) throw new Error(`inference failed: ${r.status}`);
            else lat.push(r.ms);
          }
        }));
        return lat.length;
      },
    });
    rows.push({
      scenario: `footprint ${label}`, load: `idle, then 4 clients closed loop`, faults: 0, accepted: 0, delivered: 0, evicted: 0, lost: 0, duplicates: 0,
      peakRssMb: result.loadRssMb ?? result.idleRssMb, p99Ms: Math.round(percentile(lat, 99) * 10) / 10,
      notes: `ready ${result.readyMs} ms; RSS 1 s after ready ${result.startRssMb} MB; idle RSS ${result.idleRssMb} MB PSS ${result.idlePssMb} MB (${result.idleGc ? 'after the first idle major GC' : 'no major GC within 20 s'}); load RSS ${result.loadRssMb} MB PSS ${result.loadPssMb} MB; ${result.inferences} inferences (${refused} refused with 429); ONNX Runtime ${result.ortLoaded ? 'loaded' : 'not loaded'}; node ${result.nodeArgs.join(' ') || '(no flags)'}`,
      result,
    });
  }
  return rows;
}

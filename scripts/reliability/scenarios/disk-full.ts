// Disk full: telemetry floods while the broker is away, so nothing drains. Two rows:
//  - the data directory on a 2 MB tmpfs mounted for the run (needs root and mount(8); when the
//    mount is refused the row says so and runs on the ordinary disk with the budget alone);
//  - a size budget (telemetry.maxBytes 256 KB) on the ordinary disk.
// Eviction by policy must account for every record the buffer gave up; lost stays 0.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { figuresOf, Rig, type ScenarioOptions } from '../rig.js';
import type { Figures } from '../figures.js';
import { InferenceLoad, TelemetryLoad } from '../load.js';

export function tryMount(sizeKb: number): { dir: string; unmount(): void } | { error: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-rel-small-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir, unmount: () => { try { execFileSync('umount', ['-l', dir], { stdio: 'pipe' }); } catch { /* already gone */ } rmSync(dir, { recursive: true, force: true }); } };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { error: String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]! };
  }
}

export async function flood(opts: ScenarioOptions, name: string, telemetry: Record<string, unknown>, dataDir: string | undefined, note: string): Promise<Figures> {
  const rig = await new Rig({ persistence: true, agent: { telemetry, ...(dataDir ? { dataDir } : {}) } }).start();
  try {
    // Nothing drains while the broker is away: the buffer has to hold or evict everything.
    await rig.broker.stop();
    const tel = new TelemetryLoad(() => rig.url, opts.rate * 2, ['samples', 'metrics', 'events'], 1024).start();
    const inf = new InferenceLoad(() => rig.url, Math.max(1, Math.round(opts.rate / 5))).start();
    await new Promise((r) => setTimeout(r, opts.durationMs));
    await tel.stop();
    await inf.stop();
    const during = await rig.telemetryStats();
    await rig.broker.restart();
    const f = await figuresOf(rig, {
      scenario: name, load: `${opts.rate * 2} rec/s of 1 KB + ${inf.rate} inf/s`, faults: 1, p99Ms: inf.p99(),
      notes: `${note}; evicted by reason ${JSON.stringify(Object.fromEntries(Object.entries(during.streams).map(([s, v]: [string, any]) => [s, v.evictedBy])))}; ${tel.refused} refused (not accepted); buffer file ${Math.round(during.fileBytes / 1024)} KB at the end of the flood; inference ${inf.summary()}`,
    }, 120_000);
    return f;
  } finally {
    await rig.stop();
  }
}

export async function run(opts: ScenarioOptions): Promise<Figures[]> {
  const half = { ...opts, durationMs: opts.durationMs / 2 };
  const rows: Figures[] = [];
  const m = tryMount(2048);
  if ('dir' in m) {
    const dataDir = path.join(m.dir, 'data');
    mkdirSync(dataDir);
    try {
      rows.push(await flood(half, 'disk-full (tmpfs 2 MB)', {}, dataDir, 'data dir on a 2 MB tmpfs, maxBytes left at 64 MB: the filesystem fills first'));
    } finally {
      m.unmount();
    }
  } else {
    rows.push(await flood(half, 'disk-full (budget only)', { maxBytes: 256 * 1024 }, undefined, `mount refused (${m.error}): budget only`));
  }
  rows.push(await flood(half, 'disk-budget (256 KB)', { maxBytes: 256 * 1024 }, undefined, 'telemetry.maxBytes 256 KB on the ordinary disk'));
  return rows;
}

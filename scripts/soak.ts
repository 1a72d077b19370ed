// npm run soak -- --duration 10m [--scenarios a,b] [--rate 200] [--json]
// Runs the reliability scenarios one after the other (real agent processes, real Mosquitto,
// real SQLite files), prints one figures line per scenario as it finishes and the closing
// table. The long run lasts --duration; every other scenario a tenth of it (20 s..120 s).
import { Command } from 'commander';
import { figuresLine, figuresTable, type Figures } from './reliability/figures.js';
import { SCENARIOS } from './reliability/scenarios/index.js';

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`--duration: expected a number with ms, s, m or h (e.g. 10m), got "${s}"`);
  const n = Number(m[1]);
  return n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

const program = new Command('soak')
  .option('--duration <d>', 'length of the long run (10m, 1h...); other scenarios run a tenth of it', '10m')
  .option('--scenarios <list>', `comma-separated subset of: ${Object.keys(SCENARIOS).join(', ')}`)
  .option('--rate <n>', 'telemetry records per second (inference at a fifth)', '200')
  .option('--json', 'print the rows as JSON at the end instead of the table')
  .parse();
const o = program.opts<{ duration: string; scenarios?: string; rate: string; json?: boolean }>();
const duration = parseDuration(o.duration);
const names = o.scenarios ? o.scenarios.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS);
for (const n of names) if (!(n in SCENARIOS)) throw new Error(`unknown scenario "${n}"; known: ${Object.keys(SCENARIOS).join(', ')}`);
const rate = Number(o.rate);
if (!(rate > 0)) throw new Error(`--rate: expected a positive number, got "${o.rate}"`);

process.setMaxListeners(100); // each agent child adds an exit hook
const rows: Figures[] = [];
const started = Date.now();
for (const name of names) {
  const durationMs = name === 'long-run' ? duration : Math.min(120_000, Math.max(20_000, duration / 10));
  process.stderr.write(`# ${name}: ${Math.round(durationMs / 1000)} s\n`);
  try {
    const out = await SCENARIOS[name]!({ durationMs, rate, log: (l) => process.stderr.write(`#   ${l}\n`) });
    for (const f of Array.isArray(out) ? out : [out]) {
      rows.push(f);
      console.log(figuresLine(f));
    }
  } catch (err) {
    const f: Figures = { scenario: name, load: '-', faults: 0, accepted: 0, delivered: 0, evicted: 0, lost: NaN, duplicates: 0, peakRssMb: 0, notes: `FAILED: ${String((err as Error).stack ?? err).split('\n').slice(0, 3).join(' | ')}` };
    rows.push(f);
    console.log(figuresLine(f));
  }
}
console.log(`\n# soak: ${names.length} scenarios in ${Math.round((Date.now() - started) / 1000)} s, load ${rate} rec/s; machine load average at the end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(o.json ? JSON.stringify(rows, null, 2) : figuresTable(rows));
const bad = rows.filter((r) => r.lost !== 0);
if (bad.length) {
  console.error(`lost != 0 in: ${bad.map((r) => r.scenario).join(', ')}`);
  process.exitCode = 1;
}

// npm run bench:models [-- --runs N --threads T]
// The sample digit models on each backend, side by side in one run: p50/p99 latency at
// batch 1, throughput, resident memory added by loading, held-out accuracy; then the ratios
// the issue sets targets for (native int8 p50 <= 0.5x ONNX Runtime int8 p50; int8 accuracy
// within 0.5 points of fp32). Each case runs in its own process so memory is its own.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPackage, formatBench, headToHead, type BenchResult, type HeadToHead } from '../tools/edge-model/bench.js';

const here = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(here), '..');
const args = process.argv.slice(2);
const arg = (flag: string, dflt: string): string => {
  const i = args.indexOf(flag);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const runs = Number(arg('--runs', '2000'));
const threads = Number(arg('--threads', '1'));

if (args.includes('--head-to-head')) {
  try {
    process.stdout.write(JSON.stringify(await headToHead(arg('--package', ''), runs, threads)) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n');
  }
  process.exit(0);
}

if (args.includes('--child')) {
  try {
    const r = await benchPackage(arg('--package', ''), { backend: arg('--backend', 'ort') as 'ort' | 'native', runs, threads });
    process.stdout.write(JSON.stringify(r) + '\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n');
  }
  process.exit(0);
}

const CASES: [string, 'ort' | 'native'][] = [
  ['models/digits-fp32', 'ort'],
  ['models/digits-int8', 'ort'],
  ['models/digits-int8', 'native'],
  ['models/digits-fp32', 'native'],
];

console.log(`bench:models  runs=${runs} threads=${threads} batch=1  node ${process.version}  ${process.platform}/${process.arch}`);
const results = new Map<string, BenchResult>();
for (const [pkg, backend] of CASES) {
  const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', here, '--child', '--package', path.join(root, pkg), '--backend', backend, '--runs', String(runs), '--threads', String(threads)], { encoding: 'utf8' });
  const line = child.stdout.trim().split('\n').at(-1) ?? '';
  const parsed = line.startsWith('{') ? (JSON.parse(line) as BenchResult & { error?: string }) : undefined;
  if (!parsed || parsed.error) {
    const why = parsed?.error ?? `exit ${child.status}: ${child.stderr.trim().split('\n').at(-1) ?? ''}`;
    console.log(`${path.basename(pkg).padEnd(26)} ${backend.padEnd(6)} n/a: ${why.replace(root + '/', '').slice(0, 160)}`);
    continue;
  }
  const r = parsed;
  results.set(`${path.basename(pkg)}/${backend}`, r);
  console.log(formatBench(r));
}

// The latency ratio from one process running both backends alternately (same load for both).
const h2hChild = spawnSync(process.execPath, [...process.execArgv, here, '--head-to-head', '--package', path.join(root, 'models/digits-int8'), '--runs', String(runs), '--threads', String(threads)], { encoding: 'utf8' });
const h2hLine = h2hChild.stdout.trim().split('\n').at(-1) ?? '';
const h2h = h2hLine.startsWith('{') ? (JSON.parse(h2hLine) as HeadToHead & { error?: string }) : undefined;
console.log('');
if (h2h && !h2h.error) {
  console.log(`head-to-head digits-int8, one process, alternating, ${runs} runs each:`);
  console.log(`  ort    p50 ${h2h.ort.p50Ms.toFixed(3)} ms  p99 ${h2h.ort.p99Ms.toFixed(3)} ms`);
  console.log(`  native p50 ${h2h.native.p50Ms.toFixed(3)} ms  p99 ${h2h.native.p99Ms.toFixed(3)} ms`);
} else {
  console.log(`head-to-head digits-int8: n/a: ${h2h?.error ?? h2hChild.stderr.trim().split('\n').at(-1)}`);
}

const ortInt8 = results.get('digits-int8/ort');
const nativeInt8 = results.get('digits-int8/native');
const fp32 = results.get('digits-fp32/ort');
if (h2h && !h2h.error) {
  const ratio = h2h.native.p50Ms / h2h.ort.p50Ms;
  console.log(`native int8 p50 / ort int8 p50 = ${ratio.toFixed(3)}x (head-to-head)  (target <= 0.5x: ${ratio <= 0.5 ? 'met' : 'NOT met'})`);
  console.log(`native int8 p99 / ort int8 p99 = ${(h2h.native.p99Ms / h2h.ort.p99Ms).toFixed(3)}x (head-to-head)`);
}
if (ortInt8 && nativeInt8) {
  console.log(`native int8 p50 / ort int8 p50 = ${(nativeInt8.p50Ms / ortInt8.p50Ms).toFixed(3)}x (separate processes)`);
  console.log(`native int8 throughput / ort int8 throughput = ${(nativeInt8.throughputPerSec / ortInt8.throughputPerSec).toFixed(3)}x`);
  console.log(`native int8 rss added / ort int8 rss added = ${(nativeInt8.rssAddedMiB / Math.max(0.1, ortInt8.rssAddedMiB)).toFixed(3)}x`);
} else {
  console.log('native int8 vs ort int8: not measured (a case above failed)');
}
if (fp32) {
  for (const r of [ortInt8, nativeInt8]) {
    if (!r || r.accuracy === null || fp32.accuracy === null) continue;
    const d = (r.accuracy - fp32.accuracy) * 100;
    console.log(`int8 (${r.backend}) accuracy - fp32 accuracy = ${d >= 0 ? '+' : ''}${d.toFixed(2)} points  (target within 0.5: ${Math.abs(d) <= 0.5 || d > 0 ? 'met' : 'NOT met'})`);
  }
  if (ortInt8) console.log(`ort int8 p50 / ort fp32 p50 = ${(ortInt8.p50Ms / fp32.p50Ms).toFixed(3)}x`);
}

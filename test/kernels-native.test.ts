// Builds the standalone C++ differential test executable (native/test, the same one that
// runs under qemu-aarch64 in `npm run test:arm`) and runs it on this machine: every kernel
// variant the CPU supports against the scalar reference, with a logged seed.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../agent/native.js';

const build = path.join(packageRoot, 'build/kernel-tests');

t.test('kernel_tests: every supported variant matches the scalar reference', (t) => {
  execFileSync('cmake', ['-S', path.join(packageRoot, 'native'), '-B', build, '-DEDGE_BUILD_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'pipe' });
  execFileSync('cmake', ['--build', build, '--target', 'kernel_tests', '-j2'], { stdio: 'pipe' });
  const seed = process.env.EDGE_TEST_SEED ?? String(Date.now() % 1_000_000_007);
  t.comment(`seed=${seed} (replay with EDGE_TEST_SEED=${seed})`);
  const run = spawnSync(path.join(build, 'kernel_tests'), ['--seed', seed], { encoding: 'utf8', timeout: 300_000 });
  const out = run.stdout + run.stderr;
  t.equal(run.status, 0, `kernel_tests exit status (output follows)\n${out.split('\n').slice(-30).join('\n')}`);
  const summary = out.split('\n').find((l) => /^(PASSED|FAILED):/.test(l)) ?? '';
  t.match(summary, /^PASSED: \d+ cases, 0 failures/, 'summary line says every case passed');
  const cases = Number(/(\d+) cases/.exec(summary)?.[1] ?? 0);
  t.ok(cases > 10_000, `thousands of cases ran (${cases})`);
  // Every variant this CPU supports ran, not only the scalar one.
  const cpu = /cpu=(\S+)/.exec(out)?.[1] ?? '';
  const ran = summary.replace(/.*variants:/, '').replace(/\(seed.*/, '').trim().split(/\s+/);
  for (const feature of cpu.split(',').filter((f) => f !== 'none')) {
    t.ok(ran.includes(feature), `variant ${feature} (reported by the CPU) was tested`);
  }
  t.ok(ran.includes('scalar'), 'scalar variant was tested');
  t.end();
});

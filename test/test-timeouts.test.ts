// No test can hang the suite: a test that waits for something that never happens is stopped by
// its file's timeout in seconds, reported as a timeout with the name of what it waited in, and
// the default timeout for every file is minutes, not CI's 90.
import t from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

t.setTimeout(120_000);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A project folder of its own for the nested tap: tap keeps its run state in the project's
 * `.tap` folder, and the outer run is writing into the repository's (two runs in one folder race
 * over `.tap/processinfo`). The fixture and the packages are the repository's.
 */
function scratchProject(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-tap-hang-'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({
    type: 'module', tap: { 'disable-coverage': true, 'allow-empty-coverage': true },
  }));
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  copyFileSync(path.join(root, 'test/fixtures/hang/hangs.ts'), path.join(dir, 'hangs.test.ts'));
  return dir;
}

t.test('a deliberately hung test is stopped by its timeout, named, in seconds', async (t) => {
  const dir = scratchProject();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(root, 'node_modules/tap/dist/esm/run.mjs'), '--reporter=tap', 'hangs.test.ts'], {
    cwd: dir, env: { ...process.env, HANG_TIMEOUT_MS: '2000' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = (Date.now() - started) / 1000;
  t.not(code, 0, 'tap fails the run');
  t.match(out, /not ok \d+ - timeout!/, 'reported as a timeout');
  t.match(out, /not ok \d+ - waits for a connection that never comes/, 'naming the test that hung');
  t.ok(seconds < 90, `stopped after ${seconds.toFixed(1)} s (the hang's timeout is 2 s; the rest is tap starting up)`);
});

t.test('the default timeout of a test file is minutes', async (t) => {
  const timeout = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).tap.timeout as number;
  t.ok(timeout > 0 && timeout <= 300, `tap.timeout ${timeout} s`);
});

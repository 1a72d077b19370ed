// docs/own-model.md runs as written: every ```sh block of the guide, in order, in a fresh
// folder inside the project (so `npx` finds its commands), from the example export to a
// signed package that a real agent serves.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { heldOutDigits } from '../tools/edge-model/digits.js';
import { canConnect, freePort } from './helpers/ports.js';

t.setTimeout(420_000);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

t.test('the "your own model" guide, block by block', async (t) => {
  const guide = readFileSync(path.join(root, 'docs/own-model.md'), 'utf8');
  const blocks = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.ok(blocks.length >= 4, `${blocks.length} shell blocks`);
  mkdirSync(path.join(root, 'var'), { recursive: true });
  const dir = mkdtempSync(path.join(root, 'var', 'own-model-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The guide's health port (8089) becomes a free one, so a busy 8089 on the machine running the
  // tests cannot fail it; everything else runs exactly as written.
  t.match(guide, /"port": 8089/, 'the guide serves on port 8089');
  const port = await freePort();
  const script = `set -euo pipefail\n${blocks.join('\n').replaceAll('8089', String(port))}`;
  const child = spawn('bash', ['-c', script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NPM_CONFIG_UPDATE_NOTIFIER: 'false' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const agentLog = (() => { try { return readFileSync(path.join(dir, 'my-model', 'agent.log'), 'utf8').split('\n').slice(-8).join('\n'); } catch { return '(no agent.log)'; } })();
  t.equal(code, 0, `the guide's commands succeed\n${stderr.split('\n').filter((l) => !/npm warn/.test(l)).slice(-15).join('\n')}\nagent.log:\n${agentLog}`);
  t.match(stdout, /wrote .*my-model: model\.onnx, calib\/, heldout\/, labels\.npy, digit\.npy/, 'the example export');
  t.match(stdout, /quantized: .*Conv/, 'quantized');
  t.match(stdout, /exact \(integer arithmetic without saturation\)/, 'compare measured exactly');
  t.match(stdout, /accuracy: 0\.9\d+ on 2000 samples/, 'evaluated');
  t.match(stdout, /verified digits-1\.0\.0\.edgepkg: signed by key [0-9a-f]{16}/, 'signed and verified');
  const answer = JSON.parse(stdout.slice(stdout.lastIndexOf('{\n  "model"')));
  t.match(answer, { model: 'digits', version: '1.0.0' }, 'the device served the signed package');
  const logits = (Object.values(answer.outputs ?? {})[0] as { data?: number[] } | undefined)?.data ?? [];
  const best = logits.indexOf(Math.max(...logits));
  t.equal(best, heldOutDigits().labels[0], `it reads the digit right (argmax ${best} of ${logits.length} logits)`);
  // The guide's last step stops the agent itself (not only npx): nothing listens on its port.
  t.equal(await canConnect(port), false, 'the agent was stopped');
});

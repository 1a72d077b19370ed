// docs/own-model.md runs as written: every ```sh block of the guide, in order, in a fresh
// folder inside the project (so `npx` finds its commands), from the example export to a
// signed package that a real agent serves.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { heldOutDigits } from '../tools/edge-model/digits.js';

t.setTimeout(420_000);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

t.test('the "your own model" guide, block by block', async (t) => {
  const guide = readFileSync(path.join(root, 'docs/own-model.md'), 'utf8');
  const blocks = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.ok(blocks.length >= 4, `${blocks.length} shell blocks`);
  mkdirSync(path.join(root, 'var'), { recursive: true });
  const dir = mkdtempSync(path.join(root, 'var', 'own-model-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = `set -euo pipefail\n${blocks.join('\n')}`;
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
  const stillListening = await new Promise<boolean>((resolve) => {
    const s = net.connect(8089, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  t.equal(stillListening, false, 'the agent was stopped');
});

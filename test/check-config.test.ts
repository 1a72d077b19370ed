// `edge-agent check-config` finds what `run` would refuse before it starts, not only schema
// errors: an unsafe private key, a missing package, an unreadable certificate; and a bad
// choice is one line naming the allowed values. Exit status 78, as for run.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { agentCli } from './helpers/agent.js';
import { makePki } from './helpers/pki.js';

t.setTimeout(60_000);

t.test('check-config runs run\'s checks and says what to do', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-check-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePki(['dev-a']);
  t.teardown(() => pki.remove());
  const check = (config: Record<string, unknown>) => {
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ deviceId: 'dev-a', dataDir: path.join(dir, 'data'), ...config }));
    return spawnSync(process.execPath, [agentCli, 'check-config', '--config', file], { encoding: 'utf8', timeout: 30_000 });
  };
  const loose = path.join(dir, 'loose.key');
  copyFileSync(pki.file('devices/dev-a.key'), loose);
  chmodSync(loose, 0o644);
  const bad = check({
    models: [{ name: 'digits', package: 'no-such-package' }],
    mqtt: { url: 'mqtts://127.0.0.1:8883', ca: 'missing-ca.crt', cert: pki.file('devices/dev-a.crt'), key: loose },
  });
  t.equal(bad.status, 78, 'exit 78 (EX_CONFIG), like run');
  t.match(bad.stderr, /mqtt\.key has mode 644.*chmod 600/, 'the unsafe key');
  t.match(bad.stderr, /models\[0\]\.package: .*no-such-package does not exist/, 'the missing package');
  t.match(bad.stderr, /mqtt\.ca .*missing-ca\.crt cannot be read \(ENOENT\)/, 'the missing CA');

  const choice = check({ log: { level: 'loud' } });
  t.equal(choice.status, 78);
  t.match(choice.stderr, /\/log\/level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"/, 'one line with the allowed values');
  t.equal(choice.stderr.split('\n').filter((l) => l.includes('/log/level')).length, 1, 'not one line per allowed value');

  chmodSync(loose, 0o600);
  const good = check({ mqtt: { url: 'mqtts://127.0.0.1:8883', ca: pki.file('ca.crt'), cert: pki.file('devices/dev-a.crt'), key: loose } });
  t.equal(good.status, 0, good.stderr);
});

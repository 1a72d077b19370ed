// deploy/install.sh writes a device config that works with the fleet's files as docs/security.md
// lays them out: certificates under /etc/edge-agent/tls, the package signing key trusted, and
// the agent started from that config connects to the production TLS broker.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { FleetLink } from '../agent/fleet/link.js';
import { destroyMosquitto } from './helpers/mosquitto.js';
import { makePki, repoRoot, startTlsBroker } from './helpers/pki.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const install = path.join(repoRoot, 'deploy/install.sh');

t.test('install.sh --config-only: the documented layout, trusted keys, and a config that connects', { skip: process.getuid?.() !== 0 ? 'install.sh runs as root (CI does)' : false }, async (t) => {
  const pki = makePki(['dev-a:lab']);
  t.teardown(() => pki.remove());
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-install-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pub = path.join(dir, 'fleet-2026.pub');
  const kg = spawnSync(process.execPath, [path.join(repoRoot, 'bin/edge-model.js'), 'keygen', '--out', path.join(dir, 'fleet-2026')], { encoding: 'utf8' });
  t.equal(kg.status, 0, kg.stderr);
  const etc = path.join(dir, 'etc');
  const base = ['--config-only', '--etc', etc, '--device-id', 'dev-a'];

  const noCa = spawnSync('bash', [install, ...base, '--mqtt-url', 'mqtts://127.0.0.1:8883'], { encoding: 'utf8' });
  t.equal(noCa.status, 2, 'a TLS broker URL without --ca is refused');
  t.match(noCa.stderr, /give --ca .* and --cert\/--key/);
  const noKeys = spawnSync('bash', [install, '--config-only', '--etc', path.join(dir, 'etc-nokeys'), '--device-id', 'dev-a'], { encoding: 'utf8' });
  t.equal(noKeys.status, 0, noKeys.stderr);
  t.match(noKeys.stderr, /no --trusted-key: the agent refuses every model package/, 'no trusted key: warned');

  const broker = await startTlsBroker(pki);
  t.teardown(() => destroyMosquitto(broker));
  const r = spawnSync('bash', [install, ...base, '--mqtt-url', broker.tlsUrl, '--ca', pki.file('ca.crt'), '--cert', pki.file('devices/dev-a.crt'),
    '--key', pki.file('devices/dev-a.key'), '--group', 'lab', '--trusted-key', pub], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const written = JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8'));

  // The same paths as the device section of docs/security.md.
  const doc = readFileSync(path.join(repoRoot, 'docs/security.md'), 'utf8');
  const block = /and in `\/etc\/edge-agent\/config.json`:\s*```json\n([\s\S]*?)```/.exec(doc);
  t.ok(block, 'docs/security.md shows the device config');
  const documented = JSON.parse(block![1]!);
  t.same([written.mqtt.ca, written.mqtt.cert, written.mqtt.key], [documented.mqtt.ca, documented.mqtt.cert, documented.mqtt.key], 'certificate paths as documented');
  t.same(written.security.trustedKeys, ['fleet-2026.pub'], 'the signing key is trusted');
  t.equal(statSync(path.join(etc, 'tls/device.key')).mode & 0o777, 0o600, 'device key mode 600');
  t.same(written.mqtt.groups, ['lab']);

  // Re-running keeps the operator's edits.
  const edited = { ...written, health: { ...written.health, port: 8099 } };
  writeFileSync(path.join(etc, 'config.json'), JSON.stringify(edited, null, 2));
  const again = spawnSync('bash', [install, ...base], { encoding: 'utf8' });
  t.equal(again.status, 0, again.stderr);
  t.same(JSON.parse(readFileSync(path.join(etc, 'config.json'), 'utf8')), edited, 'never overwritten');

  // That config, with a scratch state folder and port, connects to the production broker.
  const file = path.join(etc, 'config.json');
  const cfg = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(file, JSON.stringify({ ...cfg, dataDir: path.join(dir, 'state'), health: { port: 0 }, log: { level: 'silent' } }));
  const agent = new Agent(parseConfig(JSON.parse(readFileSync(file, 'utf8')), file, etc));
  await agent.start();
  t.teardown(() => agent.stop());
  const link = agent.components.find((c): c is FleetLink => c instanceof FleetLink)!;
  await waitFor(() => link.state === 'connected', { timeoutMs: 20_000, what: `the installed config's link over TLS (${JSON.stringify(link.status())})` });
  t.pass('the agent connects with the installed certificates');
});

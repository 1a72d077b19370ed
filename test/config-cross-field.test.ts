// Cross-field config rules are the config loader's: a config that breaks one is refused before
// anything starts, with exit status 78 (EX_CONFIG, which the systemd unit does not restart) and
// the field path, not an exit 1 from a component's start() that systemd restarts in a loop.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnAgentWithFile } from './helpers/agent.js';

t.setTimeout(60_000);

t.test('signed commands required with no controller key: exit 78 naming the fields', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-crossfield-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ deviceId: 'x', dataDir: path.join(dir, 'data'), health: { port: 0 }, security: { commands: { requireSignature: true } } }));
  const agent = spawnAgentWithFile(file, dir);
  const { code } = await agent.exited();
  t.equal(code, 78, 'exit status EX_CONFIG (78)');
  t.match(agent.stderr(), /invalid config file/, 'refused as a config error');
  t.match(agent.stderr(), /\/security\/commands\/controllerKeys: \/security\/commands\/requireSignature is true/, 'names both fields');
  t.notOk(existsSync(path.join(dir, 'data')), 'nothing was started');
});

t.test('provisioning: the identity comes from it, so mqtt.cert/key with it, or no mqtt.ca, is refused', async (t) => {
  const { parseConfig } = await import('../agent/config/load.js');
  const base = { deviceId: 'pi-1', dataDir: 'data', provisioning: { claimCert: 'claim.crt', claimKey: 'claim.key' } };
  t.throws(() => parseConfig({ ...base, mqtt: { url: 'mqtts://b:8883', ca: 'ca.crt', cert: 'd.crt', key: 'd.key' } }),
    /\/provisioning: the device certificate comes from provisioning \(dataDir\/identity\); leave out \/mqtt\/cert and \/mqtt\/key/);
  t.throws(() => parseConfig({ ...base, mqtt: { url: 'mqtts://b:8883' } }), /\/provisioning: needs \/mqtt\/url and \/mqtt\/ca/);
  t.throws(() => parseConfig({ ...base, mqtt: { url: 'mqtts://b:8883', ca: 'ca.crt' }, provisioning: { ...base.provisioning, renewAt: 1.5 } }), /renewAt/);
  t.throws(() => parseConfig({ ...base, mqtt: { url: 'mqtts://b:8883', ca: 'ca.crt' }, provisioning: { claimCert: 'claim.crt' } }), /claimKey/);
  const ok = parseConfig({ ...base, mqtt: { url: 'mqtts://b:8883', ca: 'ca.crt' } }, 'test', '/etc/edge-agent');
  t.equal(ok.provisioning!.claimCert, '/etc/edge-agent/claim.crt', 'claim paths are relative to the config file');
  t.equal(ok.provisioning!.renewAt, 0.66, 'defaults filled in');
});

t.test('provisioning: a claim key others can read stops the agent before it starts; check-config also finds a bad claim certificate', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-crossfield-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'claim.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', { mode: 0o644 });
  writeFileSync(path.join(dir, 'claim.crt'), 'not a certificate');
  writeFileSync(path.join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ deviceId: 'pi-1', dataDir: path.join(dir, 'data'), health: { port: 0 }, mqtt: { url: 'mqtts://127.0.0.1:1', ca: 'ca.crt' }, provisioning: { claimCert: 'claim.crt', claimKey: 'claim.key' } }));
  const agent = spawnAgentWithFile(file, dir);
  const { code } = await agent.exited();
  t.equal(code, 78, 'exit status EX_CONFIG (78)');
  t.match(agent.stderr(), /provisioning\.claimKey/, 'run names the claim key');
  t.notOk(existsSync(path.join(dir, 'data', 'identity')), 'no key was made');
  const check = spawnAgentWithFile(file, dir, { args: ['check-config', '--config', file] });
  t.not((await check.exited()).code, 0, 'check-config fails');
  t.match(check.stderr(), /provisioning\.claimKey/, 'check-config names the claim key');
  t.match(check.stderr(), /provisioning\.claimCert .* is not a PEM certificate/, 'and the claim certificate');
});

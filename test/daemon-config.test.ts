import t from 'tap';
import { parseConfig, loadConfig } from '../agent/config/load.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const base = { deviceId: 'pi-1', dataDir: 'var' };

t.test('defaults fill every optional key and the result is frozen', async (t) => {
  const c = parseConfig(base, 'cfg.json', '/srv');
  t.equal(c.health.host, '127.0.0.1', 'health binds loopback by default');
  t.equal(c.health.port, 8080);
  t.equal(c.dataDir, '/srv/var', 'dataDir is resolved against the config file folder');
  t.same(c.models, []);
  t.equal(c.mqtt.url, undefined, 'without mqtt.url the agent runs offline');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.health), 'config is frozen');
});

const bad: [string, Record<string, unknown>, RegExp][] = [
  ['a wrong type', { ...base, health: { port: 'eighty' } }, /\/health\/port: must be integer/],
  ['an unknown key', { ...base, helth: {} }, /\(root\): unknown key "helth"/],
  ['an unknown nested key', { ...base, telemetry: { maxbytes: 1 } }, /\/telemetry: unknown key "maxbytes"/],
  ['a missing required key', { dataDir: 'x' }, /\(root\): missing required key "deviceId"/],
  ['a bad enum', { ...base, models: [{ name: 'm', package: 'p', backend: 'gpu' }] }, /\/models\/0\/backend/],
  ['a port out of range', { ...base, health: { port: 70000 } }, /\/health\/port: must be <= 65535/],
  ['a device id unsafe in topics', { ...base, deviceId: 'a/b#' }, /\/deviceId: must match pattern/],
  ['a public bind without token', { ...base, health: { host: '0.0.0.0' } }, /requires \/health\/token/],
  ['duplicate model names', { ...base, models: [{ name: 'm', package: 'a' }, { name: 'm', package: 'b' }] }, /duplicate model name "m"/],
];
for (const [what, raw, message] of bad) {
  t.test(`refuses ${what}, naming the field path`, async (t) => {
    t.throws(() => parseConfig(raw, 'cfg.json'), { code: 'EDGE_CONFIG_INVALID', message });
  });
}

t.test('all problems are reported at once', async (t) => {
  const err = (() => {
    try {
      parseConfig({ dataDir: 1, extra: true }, 'cfg.json');
    } catch (e) {
      return e as Error;
    }
  })();
  t.match(err?.message, /missing required key "deviceId"/);
  t.match(err?.message, /\/dataDir: must be string/);
  t.match(err?.message, /unknown key "extra"/);
});

t.test('environment variables override single keys', async (t) => {
  const c = parseConfig(base, 'cfg.json', '/srv', { EDGE_AGENT__HEALTH__PORT: '9191', EDGE_AGENT__LOG__LEVEL: 'debug', EDGE_AGENT__MQTT__URL: 'mqtt://broker:1883' });
  t.equal(c.health.port, 9191);
  t.equal(c.log.level, 'debug');
  t.equal(c.mqtt.url, 'mqtt://broker:1883');
  t.throws(() => parseConfig(base, 'cfg.json', '/srv', { EDGE_AGENT__HEALTH__PORT: 'x' }), /\/health\/port: must be integer/,
    'an override is validated like the file');
});

t.test('a file that is not JSON or not there is a clear error', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-cfg-'));
  const f = path.join(dir, 'c.json');
  writeFileSync(f, '{ "deviceId": ');
  t.throws(() => loadConfig(f), { code: 'EDGE_CONFIG_INVALID', message: /not valid JSON/ });
  t.throws(() => loadConfig(path.join(dir, 'missing.json')), { code: 'EDGE_CONFIG_UNREADABLE' });
});

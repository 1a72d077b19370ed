// The telemetry section of the config: defaults, refusals with the path named, and per-stream
// policy overriding the built-in one key by key.
import t from 'tap';
import { parseConfig } from '../agent/config/load.js';
import { streamPolicy } from '../agent/telemetry/policy.js';

const base = { deviceId: 'd1', dataDir: '/tmp/edge-telemetry-config' };

t.test('defaults fill every telemetry key', async (t) => {
  const c = parseConfig(base).telemetry;
  t.match(c, { maxBytes: 64 * 1024 * 1024, synchronous: 'normal', commitIntervalMs: 5, commitMaxRecords: 512, leaseTimeoutSeconds: 60, file: 'telemetry.db', streams: {} });
});

t.test('bad telemetry settings are refused naming the path', async (t) => {
  t.throws(() => parseConfig({ ...base, telemetry: { streams: { 'Bad Name': {} } } }), /\/telemetry\/streams: unknown key "Bad Name"/);
  t.throws(() => parseConfig({ ...base, telemetry: { streams: { metrics: { bogus: 1 } } } }), /\/telemetry\/streams\/metrics: unknown key "bogus"/);
  t.throws(() => parseConfig({ ...base, telemetry: { streams: { metrics: { priority: 10 } } } }), /\/telemetry\/streams\/metrics\/priority/);
  t.throws(() => parseConfig({ ...base, telemetry: { synchronous: 'extra' } }), /\/telemetry\/synchronous/);
  t.throws(() => parseConfig({ ...base, telemetry: { maxBytes: 1000 } }), /\/telemetry\/maxBytes/);
});

t.test('a stream named in the config keeps the built-in keys it does not set', async (t) => {
  const c = parseConfig({ ...base, telemetry: { streams: { alerts: { priority: 8 }, metrics: { bytesPerDay: 5000 }, custom: { durable: 'full' } } } }).telemetry;
  t.same(streamPolicy(c, 'alerts'), { priority: 8, durable: 'full', bytesPerSecond: 0, bytesPerDay: 0, exempt: true });
  t.same(streamPolicy(c, 'metrics'), { priority: 3, durable: 'normal', bytesPerSecond: 0, bytesPerDay: 5000, exempt: false });
  t.same(streamPolicy(c, 'custom'), { priority: 4, durable: 'full', bytesPerSecond: 0, bytesPerDay: 0, exempt: false });
  const full = parseConfig({ ...base, telemetry: { synchronous: 'full' } }).telemetry;
  t.equal(streamPolicy(full, 'metrics').durable, 'full', 'synchronous=full makes every stream durable');
});

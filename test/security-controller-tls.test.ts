// The controller on the production broker of docs/security.md: a TLS-only Mosquitto with
// require_certificate and per-identity ACLs. `edge-fleet serve`, `cmd` and `deploy` speak
// mutual TLS with --ca/--cert/--key and manage a device over it (its status arrives, a command
// is answered, a model is deployed); without a certificate they say what to pass.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { FleetStore } from '../controller/store.js';
import { destroyMosquitto } from './helpers/mosquitto.js';
import { makePki, repoRoot, startTlsBroker } from './helpers/pki.js';
import { variantPackage } from './helpers/variant-models.js';
import { waitFor, within } from './helpers/wait.js';
import { SERVING } from './fleet-support.js';

t.setTimeout(180_000);
const fleet = path.join(repoRoot, 'bin/edge-fleet.js');

t.test('edge-fleet manages a device through a require_certificate TLS broker', async (t) => {
  const pki = makePki(['dev-a:lab']);
  t.teardown(() => pki.remove());
  const broker = await startTlsBroker(pki);
  t.teardown(() => destroyMosquitto(broker));
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-ctl-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'fleet.db');
  const tls = ['--ca', pki.file('ca.crt'), '--cert', pki.file('controller.crt'), '--key', pki.file('controller.key')];
  // Asynchronous: the device runs in this process and must answer while the CLI waits.
  const run = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [fleet, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.once('close', (status) => resolve({ status, stdout, stderr }));
  });

  // Without the controller's certificate the broker closes the connection; the CLI says why.
  const bare = await run(['cmd', 'dev-a', 'ping', '--broker', broker.tlsUrl, '--db', db, '--timeout', '2000']);
  t.not(bare.status, 0, 'refused without a CA');
  t.match(bare.stderr, /signed by a private CA: pass it with --ca/, `says to pass --ca: ${bare.stderr.trim()}`);
  const noCert = await run(['cmd', 'dev-a', 'ping', '--broker', broker.tlsUrl, '--ca', pki.file('ca.crt'), '--db', db, '--timeout', '2000']);
  t.not(noCert.status, 0, 'refused without a client certificate');
  t.match(noCert.stderr, /pass --cert and --key/, `says to pass --cert and --key: ${noCert.stderr.trim()}`);
  const loose = path.join(dir, 'loose.key');
  copyFileSync(pki.file('controller.key'), loose);
  chmodSync(loose, 0o644);
  const looseRun = await run(['cmd', 'dev-a', 'ping', '--broker', broker.tlsUrl, '--ca', pki.file('ca.crt'), '--cert', pki.file('controller.crt'), '--key', loose]);
  t.not(looseRun.status, 0, 'a key others can read is refused');
  t.match(looseRun.stderr, /mode 644.*chmod 600/, looseRun.stderr.trim());

  const serve: ChildProcess = spawn(process.execPath, [fleet, 'serve', '--broker', broker.tlsUrl, ...tls, '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { serve.kill('SIGKILL'); });
  let stderr = '';
  serve.stderr!.on('data', (d) => { stderr += d; });
  const ready = new Promise<string>((resolve) => serve.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('"ready":true')) resolve(d.toString()); }));
  const exited = new Promise<never>((_, reject) => serve.once('exit', (code) => reject(new Error(`edge-fleet serve exited ${code}: ${stderr}`))));
  await within(Promise.race([ready, exited]), 30_000, `edge-fleet serve to connect over TLS (${stderr})`);

  const agentDir = mkdtempSync(path.join(tmpdir(), 'edge-ctl-tls-agent-'));
  t.teardown(() => rmSync(agentDir, { recursive: true, force: true }));
  const agent = new Agent(parseConfig({
    deviceId: 'dev-a', dataDir: 'data', log: { level: (process.env.TEST_LOG ?? 'silent') as 'silent' }, health: { port: 0 },
    mqtt: { url: broker.tlsUrl, ca: pki.file('ca.crt'), cert: pki.file('devices/dev-a.crt'), key: pki.file('devices/dev-a.key'), groups: ['lab'], reconnectMinMs: 100, reconnectMaxMs: 1000 },
    security: { requireSignedPackages: false },
  }, 'test', agentDir));
  await agent.start();
  t.teardown(() => agent.stop());

  const store = new FleetStore(db);
  t.teardown(() => store.close());
  await waitFor(() => (store.device('dev-a')?.status as { state?: string } | undefined)?.state === 'online',
    { timeoutMs: 30_000, what: 'the device\'s online status in the controller database, over TLS' });
  t.pass('status: the device is online in the controller database');

  const ping = await run(['cmd', 'dev-a', 'ping', '--broker', broker.tlsUrl, ...tls, '--db', db, '--json']);
  t.equal(ping.status, 0, ping.stderr);
  t.match(JSON.parse(ping.stdout), { ok: true, result: { pong: true } }, 'a command is answered');

  const pkg = variantPackage('good', '1.1.0', mkdtempSync(path.join(tmpdir(), 'edge-ctl-tls-pkg-')));
  const pub = await run(['publish', pkg, '--db', db, '--json']);
  t.equal(pub.status, 0, pub.stderr);
  t.match(pub.stderr, /is not signed: devices with security.requireSignedPackages \(the default\) will refuse it; sign it with "edge-model sign/, 'publish warns about an unsigned package');
  const art = JSON.parse(pub.stdout) as { name: string; version: string };
  const dep = await run(['deploy', `${art.name}@${art.version}`, '--device', 'dev-a', '--broker', broker.tlsUrl, ...tls, '--db', db]);
  t.equal(dep.status, 0, dep.stderr);
  await waitFor(() => agent.models.list().find((m) => m.name === art.name && m.version === '1.1.0' && m.ready),
    { timeoutMs: 60_000, what: () => `${art.name}@1.1.0 served by the device (${stderr.slice(-500)})` });
  await waitFor(() => ((store.device('dev-a')?.reported as { models?: { version: string; state: string }[] } | null)?.models ?? []).find((m) => m.version === '1.1.0' && SERVING.test(m.state)),
    { timeoutMs: 30_000, what: 'the device reporting 1.1.0 to the controller' });
  t.pass('a model deployed over TLS is downloaded, installed and reported');
});

t.test('publish --version is the subcommand\'s option, checked against the manifest (not the program\'s -V)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-ctl-publish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pkg = variantPackage('good', '1.1.0', dir);
  const db = path.join(dir, 'fleet.db');
  const publish = (version: string) => spawnSync(process.execPath, [fleet, 'publish', pkg, '--db', db, '--version', version, '--json'], { encoding: 'utf8', timeout: 60_000 });
  const wrong = publish('9.9.9');
  t.equal(wrong.status, 1, 'a label the manifest does not carry is refused');
  t.notMatch(wrong.stdout, /^0\.1\.0/, 'not the program version');
  t.match(wrong.stderr, /--version 9\.9\.9 differs from the version in its manifest\.json \(1\.1\.0\)/, wrong.stderr.trim());
  const right = publish('1.1.0');
  t.equal(right.status, 0, right.stderr);
  t.match(JSON.parse(right.stdout), { version: '1.1.0', signed: false });
  const program = spawnSync(process.execPath, [fleet, '--version'], { encoding: 'utf8' });
  t.match(program.stdout, /^\d+\.\d+\.\d+/, 'the program\'s own --version still works before a subcommand');
});

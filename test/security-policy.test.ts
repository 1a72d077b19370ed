// The agent's security policy: it refuses to start with a private key others can read, the
// model loader refuses unsigned/tampered packages with the agent's verifier, commands can
// be required to carry a fresh controller signature, and secrets never reach the log.
import t from 'tap';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { EdgeError } from '../agent/errors.js';
import { loadPackage } from '../agent/models/package.js';
import { checkPrivateKeyFile } from '../agent/security/key-file.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { canonicalJson, signCommand } from '../agent/security/command-signing.js';
import { redactSecrets } from '../agent/security/redact.js';
import { makePki, repoRoot } from './helpers/pki.js';
import { spawnAgent } from './helpers/agent.js';

const fleetKey = generateKeyPair();
const controllerKey = generateKeyPair();

function tmp(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-sec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function agentWith(dir: string, raw: Record<string, unknown>): Agent {
  const config = parseConfig({ deviceId: 'dev-a', dataDir: 'data', health: { port: 0 }, log: { level: 'silent' }, ...raw }, 'test', dir);
  return new Agent(config);
}

async function startError(agent: Agent): Promise<EdgeError | Error | undefined> {
  try {
    await agent.start();
  } catch (err) {
    return err as Error;
  } finally {
    await agent.stop().catch(() => undefined);
  }
  return undefined;
}

t.test('the agent refuses to start when its MQTT key is readable by others', async (t) => {
  const dir = tmp(t);
  const pki = makePki(['dev-a']);
  t.teardown(() => pki.remove());
  const key = path.join(dir, 'dev-a.key');
  cpSync(pki.file('devices/dev-a.key'), key);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(key, mode);
    const err = await startError(agentWith(dir, { mqtt: { key: 'dev-a.key', cert: pki.file('devices/dev-a.crt'), ca: pki.file('ca.crt') } }));
    t.equal((err as EdgeError | undefined)?.code, 'EDGE_KEY_FILE_INSECURE', `mode ${mode.toString(8)} is refused`);
    t.match(err?.message ?? '', /chmod 600/, 'the message says how to fix it');
  }
  chmodSync(key, 0o600);
  t.equal(await startError(agentWith(dir, { mqtt: { key: 'dev-a.key' } })), undefined, 'mode 600 starts');
  t.throws(() => checkPrivateKeyFile(path.join(dir, 'missing.key')), { code: 'EDGE_KEY_FILE_INSECURE' }, 'a missing key file is refused');
});

/** A copy of the digits package, optionally signed. */
async function digits(t: { teardown(f: () => void): void }, sign: boolean): Promise<string> {
  const dir = path.join(tmp(t), 'digits');
  cpSync(path.join(repoRoot, 'models', 'digits-fp32'), dir, { recursive: true });
  if (sign) await signPackage(dir, fleetKey.privateKeyPem);
  return dir;
}

t.test('with the policy started, the package loader verifies signatures with the agent\'s verifier (on by default)', async (t) => {
  const dir = tmp(t);
  writeFileSync(path.join(dir, 'fleet.pub'), fleetKey.publicKeyPem);
  const agent = agentWith(dir, { security: { trustedKeys: ['fleet.pub'] } });
  await agent.start();
  t.teardown(() => agent.stop());

  const good = await loadPackage(await digits(t, true), { verifier: agent.security.packageVerifier });
  t.same(good.signature, { verified: true, signer: fleetKey.keyId }, 'a signed package loads, verified, naming its signer');

  await t.rejects(loadPackage(await digits(t, false), { verifier: agent.security.packageVerifier }), { code: 'EDGE_PACKAGE_SIGNATURE', message: /not signed/ }, 'unsigned is refused');

  const otherSigned = await digits(t, false);
  await signPackage(otherSigned, generateKeyPair().privateKeyPem);
  await t.rejects(loadPackage(otherSigned, { verifier: agent.security.packageVerifier }), { code: 'EDGE_PACKAGE_SIGNATURE', message: /not among the trusted keys/ }, 'an unknown key is refused');

  const edited = await digits(t, true);
  const m = JSON.parse(readFileSync(path.join(edited, 'manifest.json'), 'utf8'));
  m.description = 'edited after signing';
  writeFileSync(path.join(edited, 'manifest.json'), JSON.stringify(m));
  await t.rejects(loadPackage(edited, { verifier: agent.security.packageVerifier }), { code: 'EDGE_PACKAGE_SIGNATURE', message: /changed after signing/ }, 'an edited manifest is refused');

  const flipped = await digits(t, true);
  const model = readFileSync(path.join(flipped, 'model.onnx'));
  model[model.length - 3] ^= 1;
  writeFileSync(path.join(flipped, 'model.onnx'), model);
  await t.rejects(loadPackage(flipped, { verifier: agent.security.packageVerifier }), { message: /does not match its sha256/ }, 'a flipped byte in model.onnx is refused');

  const missing = await digits(t, true);
  rmSync(path.join(missing, 'model.onnx'));
  await t.rejects(loadPackage(missing, { verifier: agent.security.packageVerifier }), { message: /missing/ }, 'a manifest naming a missing file is refused');

  // The signature is checked before any file is read (issue 26): the flipped byte and the
  // missing file carry good signatures (counted verified), then fail on their files.
  t.match(agent.security.status(), { requireSignedPackages: true, trustedKeys: [fleetKey.keyId], packagesVerified: 3, packagesRefused: 3 });
});

t.test('with no trusted keys and the default policy, every package is refused', async (t) => {
  const agent = agentWith(tmp(t), {});
  await agent.start();
  t.teardown(() => agent.stop());
  await t.rejects(loadPackage(await digits(t, true), { verifier: agent.security.packageVerifier }), { code: 'EDGE_PACKAGE_SIGNATURE', message: /no trusted public keys.*edge-model keygen.*edge-model sign.*security\.trustedKeys/ });
});

t.test('a bad trusted key entry is a config error at start', async (t) => {
  const dir = tmp(t);
  const err = await startError(agentWith(dir, { security: { trustedKeys: ['nope.pub'] } }));
  t.equal((err as EdgeError).code, 'EDGE_CONFIG_UNREADABLE');
  writeFileSync(path.join(dir, 'rsa.pub'), '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n');
  const err2 = await startError(agentWith(dir, { security: { trustedKeys: ['rsa.pub'] } }));
  t.equal((err2 as EdgeError).code, 'EDGE_CONFIG_INVALID');
});

t.test('signed commands: fresh, for this device, once', async (t) => {
  const dir = tmp(t);
  const agent = agentWith(dir, { security: { commands: { requireSignature: true, controllerKeys: [controllerKey.publicKeyPem], maxSkewSeconds: 60 } } });
  await agent.start();
  t.teardown(() => agent.stop());
  const cmd = { id: 'c-1', name: 'ping', args: { x: 1 } };
  const signed = signCommand(cmd, 'dev-a', controllerKey.privateKeyPem);
  t.doesNotThrow(() => agent.security.checkCommand(signed), 'a fresh signed command for this device passes');
  t.throws(() => agent.security.checkCommand(signed), { code: 'EDGE_COMMAND_SIGNATURE', message: /replay/ }, 'the same command again is a replay');
  t.throws(() => agent.security.checkCommand(cmd), { code: 'EDGE_COMMAND_SIGNATURE', message: /no "sig"/ }, 'unsigned is refused');
  t.throws(() => agent.security.checkCommand(signCommand({ ...cmd, id: 'c-2' }, 'dev-b', controllerKey.privateKeyPem)),
    { message: /does not verify/ }, 'a command signed for another device is refused');
  t.throws(() => agent.security.checkCommand({ ...signCommand({ ...cmd, id: 'c-3' }, 'dev-a', controllerKey.privateKeyPem), args: { x: 2 } }),
    { message: /does not verify/ }, 'changed args are refused');
  t.throws(() => agent.security.checkCommand(signCommand({ ...cmd, id: 'c-4' }, 'dev-a', controllerKey.privateKeyPem, Date.now() - 120_000)),
    { message: /outside the 60 s window/ }, 'a stale command is refused');
  t.throws(() => agent.security.checkCommand(signCommand({ ...cmd, id: 'c-5' }, 'dev-a', generateKeyPair().privateKeyPem)),
    { message: /not a configured controller key/ }, 'another key is refused');
  t.equal(canonicalJson({ b: [1, { d: 1, c: 'x' }], a: null }), '{"a":null,"b":[1,{"c":"x","d":1}]}', 'canonical JSON sorts keys at every level');
});

t.test('secrets and sensitive payloads never reach the log', async (t) => {
  // The real logger writes to fd 1, so run it in a child process and read what it printed.
  const script = `
    import { createLogger } from ${JSON.stringify(path.join(repoRoot, 'agent/log.ts'))};
    import { parseConfig } from ${JSON.stringify(path.join(repoRoot, 'agent/config/load.ts'))};
    const log = createLogger('info');
    const config = parseConfig({ deviceId: 'd', dataDir: '.', health: { token: 'tok-ABCDEFGHIJKLMNOP' },
      mqtt: { password: 'hunter2-secret', key: '/etc/edge/dev.key' } }, 'x', '/tmp');
    log.info({ config }, 'config loaded');
    log.info({ req: { headers: { authorization: 'Bearer tok-ABCDEFGHIJKLMNOP' } } }, 'request');
    log.info({ message: { sensitive: true, payload: 'camera-frame-bytes' } }, 'sensitive message');
    log.info({ deep: { a: { b: { privateKeyPem: '-----BEGIN PRIVATE KEY-----xyz' } } } }, 'deep');
    log.error({ err: new Error('boom kept') }, 'error');
  `;
  const file = path.join(tmp(t), 'log-secrets.mts');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: repoRoot, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  t.equal(out.trim().split('\n').length, 5, 'five log lines');
  for (const secret of ['tok-ABCDEFGHIJKLMNOP', 'hunter2-secret', '/etc/edge/dev.key', 'camera-frame-bytes', 'BEGIN PRIVATE KEY']) {
    t.notMatch(out, secret, `${secret} is not in the log`);
  }
  t.match(out, '"deviceId":"d"', 'the rest of the config is logged');
  t.match(out, 'boom kept', 'errors keep their message');
  t.match(out, '[redacted]');
  t.same(redactSecrets({ a: [{ token: 'x' }], n: 1 }), { a: [{ token: '[redacted]' }], n: 1 }, 'redactSecrets copies with secrets replaced');
});

t.test('the daemon process exits with EX_CONFIG (78) and says why when its key is world-readable', async (t) => {
  const pki = makePki(['test-device']);
  t.teardown(() => pki.remove());
  const dir = tmp(t);
  const key = path.join(dir, 'device.key');
  cpSync(pki.file('devices/test-device.key'), key);
  chmodSync(key, 0o644);
  const agent = spawnAgent({ mqtt: { key, cert: pki.file('devices/test-device.crt'), ca: pki.file('ca.crt') } });
  t.teardown(() => agent.kill('SIGKILL'));
  const { code } = await agent.exited();
  t.equal(code, 78, 'exit status 78, which the unit file does not restart');
  t.match(agent.stderr(), /private key file .*device\.key is not safe to use: mqtt\.key has mode 644.*chmod 600/, agent.stderr());
  t.notOk(agent.logs.some((l) => l.msg === 'edge-agent ready'), 'it never became ready');
});

t.test('a command can never carry a path or a URL', async (t) => {
  const agent = agentWith(tmp(t), { security: { requireSignedPackages: false } });
  await agent.start();
  t.teardown(() => agent.stop());
  const send = (id: string, name: string, args: unknown) => agent.fleet.commands.handle(Buffer.from(JSON.stringify({ id, name, args })));
  const bad: Array<[string, unknown]> = [
    ['models.activate', { name: '../../../../tmp', version: '1.0.0' }],
    ['models.activate', { name: 'digits', version: '../../other/1.0.0' }],
    ['models.activate', { name: 'digits', version: '..' }],
    ['models.rollback', { name: '/etc/passwd' }],
    ['models.activate', { name: 'digits', version: 'https://evil.example/pkg.edgepkg' }],
    ['models.activate', { name: 'digi\\ts', version: '1' }],
    ['telemetry.flush', { nested: [{ path: 'file:///etc/shadow' }] }],
  ];
  for (const [i, [name, args]] of bad.entries()) {
    const r = await send(`bad-${i}`, name, args);
    t.match(r, { ok: false, error: { code: 'EDGE_COMMAND_UNSAFE_ARGUMENT', message: /never carry file paths or URLs/ } }, `${name} ${JSON.stringify(args)} is refused`);
  }
  const plain = await send('plain-1', 'models.activate', { name: 'digits', version: '1.0.0' });
  t.match(plain, { ok: false, error: { code: 'EDGE_FLEET_UNAVAILABLE' } }, 'plain names pass the check (and then find nothing installed)');
  t.match(await send('ping-1', 'ping', {}), { ok: true }, 'ordinary commands still run');
});

// The installer (agent/models/install.ts) keeps a refusal's code: a package that is not what
// its manifest says is EDGE_PACKAGE_INVALID, a package whose signature the verifier refuses is
// EDGE_PACKAGE_SIGNATURE. The verifier is passed in, never installed process-wide: two agents
// in one process, with different security settings, install independently.
import t from 'tap';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/load.js';
import { packArchive } from '../agent/models/archive.js';
import { InstalledVersions, packageSteps } from '../agent/models/install.js';
import * as verify from '../agent/models/verify.js';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { repoRoot } from './helpers/pki.js';

const fleetKey = generateKeyPair();
const strangerKey = generateKeyPair();
const work = mkdtempSync(path.join(tmpdir(), 'edge-install-codes-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const VERSION = JSON.parse(readFileSync(path.join(repoRoot, 'models', 'digits-fp32', 'manifest.json'), 'utf8')).version as string;

/** An .edgepkg of the digits package: signed by `key` (or not), optionally with a flipped byte in model.onnx. */
async function artifact(name: string, key: string | undefined, flipModelByte = false): Promise<{ file: string; sha256: string }> {
  const dir = path.join(work, `${name}-src`);
  cpSync(path.join(repoRoot, 'models', 'digits-fp32'), dir, { recursive: true });
  if (key) await signPackage(dir, key);
  if (flipModelByte) {
    const model = readFileSync(path.join(dir, 'model.onnx'));
    model[model.length - 3] ^= 1; // same size, so only its sha256 (in the signed manifest) can tell
    writeFileSync(path.join(dir, 'model.onnx'), model);
  }
  const file = path.join(work, `${name}.edgepkg`);
  await packArchive(dir, file);
  return { file, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}

/** A fresh copy of the artifact where model sync keeps a download, and what to install it as. */
async function downloaded(store: InstalledVersions, a: { file: string; sha256: string }): Promise<{ partial: string; target: { name: string; version: string; sha256: string } }> {
  const target = { name: 'digits', version: VERSION, sha256: a.sha256 };
  const partial = await store.partialFile(target);
  cpSync(a.file, partial);
  return { partial, target };
}

/** An agent (not started: only its security policy, which builds the verifier) with these security settings. */
async function agentWith(name: string, security: Record<string, unknown>): Promise<Agent> {
  const dir = path.join(work, name);
  cpSync(path.join(work, 'keys'), dir, { recursive: true });
  const agent = new Agent(parseConfig({ deviceId: name, dataDir: 'data', health: { port: 0 }, log: { level: 'silent' }, security }, 'test', dir));
  await agent.security.start();
  t.teardown(() => agent.security.stop());
  return agent;
}

mkdirSync(path.join(work, 'keys'));
writeFileSync(path.join(work, 'keys', 'fleet.pub'), fleetKey.publicKeyPem);

const signed = await artifact('signed', fleetKey.privateKeyPem);
const tampered = await artifact('tampered', fleetKey.privateKeyPem, true);
const unsigned = await artifact('unsigned', undefined);
const stranger = await artifact('stranger', strangerKey.privateKeyPem);

t.test('through the real installer, an invalid package and a bad signature get their own codes', async (t) => {
  const agent = await agentWith('device-strict', { trustedKeys: ['fleet.pub'] });
  const store = new InstalledVersions(path.join(work, 'strict-models'), packageSteps(agent.security.packageVerifier));
  const cases: [string, { file: string; sha256: string }, string, RegExp][] = [
    ['a flipped byte in model.onnx (signature good)', tampered, 'EDGE_PACKAGE_INVALID', /model\.onnx does not match its sha256/],
    ['an unsigned package', unsigned, 'EDGE_PACKAGE_SIGNATURE', /not signed/],
    ['a package signed by an unknown key', stranger, 'EDGE_PACKAGE_SIGNATURE', /not among the trusted keys/],
  ];
  for (const [what, a, code, message] of cases) {
    const { partial, target } = await downloaded(store, a);
    await t.rejects(store.install(partial, target), { code, message }, `${what}: ${code}`);
    t.notOk(store.isInstalled('digits', VERSION), `${what}: nothing is installed`);
    t.same(readdirSync(path.join(store.modelsDir, 'digits')), [], `${what}: no download, temporary folder or mark is left`);
  }
  const { partial, target } = await downloaded(store, signed);
  await store.install(partial, target);
  t.ok(store.isInstalled('digits', VERSION), 'the package the fleet key signed installs');
  t.ok(await store.holds(target), 'its mark names the artifact installed');
  t.ok(existsSync(path.join(store.packagePath('digits', VERSION), 'model.onnx')), 'unpacked in its version folder');
  // The signature is checked on the archive and again on the unpacked folder: twice for the
  // tampered package (which then fails its hash) and twice for the good one.
  t.match(agent.security.status(), { packagesVerified: 4, packagesRefused: 2 }, 'the agent\'s own policy counted its checks');
});

t.test('no verifier is process-wide: two agents in one process install independently', async (t) => {
  const strict = await agentWith('device-a', { trustedKeys: ['fleet.pub'] });
  const open = await agentWith('device-b', { requireSignedPackages: false });
  const strictStore = new InstalledVersions(path.join(work, 'a-models'), packageSteps(strict.security.packageVerifier));
  const openStore = new InstalledVersions(path.join(work, 'b-models'), packageSteps(open.security.packageVerifier));

  // Interleaved, so a verifier left behind by one agent would show in the other.
  let d = await downloaded(openStore, stranger);
  await openStore.install(d.partial, d.target);
  t.ok(openStore.isInstalled('digits', VERSION), 'the agent that accepts unsigned packages installs one signed by a stranger');
  d = await downloaded(strictStore, stranger);
  await t.rejects(strictStore.install(d.partial, d.target), { code: 'EDGE_PACKAGE_SIGNATURE' }, 'the agent that requires the fleet key still refuses it');
  rmSync(openStore.modelsDir, { recursive: true, force: true });
  d = await downloaded(openStore, unsigned);
  await openStore.install(d.partial, d.target);
  t.ok(openStore.isInstalled('digits', VERSION), 'and the open agent installs an unsigned one after that');
  t.match(open.security.status(), { requireSignedPackages: false, packagesVerified: 0, packagesRefused: 0 }, 'the open agent checked no signature');
  t.match(strict.security.status(), { packagesRefused: 1 }, 'the strict agent refused once');

  // Both still refuse an inconsistent package the same way: that is not a matter of policy.
  for (const [who, store] of [['strict', strictStore], ['open', openStore]] as const) {
    rmSync(store.modelsDir, { recursive: true, force: true });
    const { partial, target } = await downloaded(store, tampered);
    await t.rejects(store.install(partial, target), { code: 'EDGE_PACKAGE_INVALID' }, `${who}: a flipped byte is EDGE_PACKAGE_INVALID`);
  }

  const api = Object.keys(verify).sort();
  t.same(api.filter((k) => /^set|install|current/i.test(k)), [], `agent/models/verify.ts exports no setter (${api.join(', ')})`);
});

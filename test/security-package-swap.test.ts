// Signed packages end to end in a real agent: version 1.0.0 (signed by the fleet key) serves
// over HTTP; every tampered version 1.1.0 is refused when activated, with a clear reason, and
// 1.0.0 keeps answering; then a correctly signed 1.1.0 takes over (so the check can tell).
import t from 'tap';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateKeyPair, signPackage } from '../agent/security/signing.js';
import { FP32, copyPackage, digitBatch, postJson, readManifest, replaceFile, startAgent, tempDir, writeManifest } from './helpers/model-packages.js';

const fleet = generateKeyPair();
const stranger = generateKeyPair();
const work = tempDir('edge-swap-');
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** digits-fp32 as `version`, signed with `key` (or unsigned). */
async function build(version: string, key = fleet.privateKeyPem): Promise<string> {
  const dir = copyPackage(FP32, work);
  const m = readManifest(dir);
  m.version = version;
  writeManifest(dir, m);
  if (key) await signPackage(dir, key);
  return dir;
}

const v1 = await build('1.0.0');
const running = await startAgent({
  models: [{ name: 'digits', package: v1 }],
  security: { requireSignedPackages: true, trustedKeys: [fleet.publicKeyPem] },
});
t.teardown(() => running.stop());
const batch = digitBatch(0, 2);
const body = { inputs: { input: { shape: batch.shape, data: Array.from(batch.data) } } };

async function servedVersion(): Promise<string> {
  const r = await postJson(`${running.url}/v1/models/digits/infer`, body);
  if (r.status !== 200) throw new Error(`infer answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.version as string;
}

t.test('the signed 1.0.0 serves', async (t) => {
  t.equal(await servedVersion(), '1.0.0');
  t.match(running.agent.security.status(), { packagesVerified: 1 });
});

const cases: Array<[string, () => Promise<string>, string, RegExp]> = [
  ['unsigned', async () => { const d = await build('1.1.0', ''); return d; }, 'EDGE_PACKAGE_SIGNATURE', /not signed/],
  ['signed by an unknown key', () => build('1.1.0', stranger.privateKeyPem), 'EDGE_PACKAGE_SIGNATURE', /not among the trusted keys/],
  ['a flipped byte in model.onnx', async () => {
    const d = await build('1.1.0');
    const b = readFileSync(path.join(d, 'model.onnx'));
    b[b.length >> 1] ^= 0x10;
    writeFileSync(path.join(d, 'model.onnx'), b);
    return d;
  }, 'EDGE_PACKAGE_INVALID', /does not match its sha256/],
  ['the manifest edited after signing', async () => {
    const d = await build('1.1.0');
    const m = readManifest(d);
    m.postprocessing = { ...m.postprocessing, labels: ['0', '1', '2', '3', '4', '5', '6', '7', '9', '8'] };
    writeManifest(d, m);
    return d;
  }, 'EDGE_PACKAGE_SIGNATURE', /changed after signing/],
  ['model.onnx replaced and re-hashed into the manifest', async () => {
    const d = await build('1.1.0');
    const b = readFileSync(path.join(d, 'model.onnx'));
    b[b.length - 5] ^= 0x01;
    replaceFile(d, 'model.onnx', b);
    return d;
  }, 'EDGE_PACKAGE_SIGNATURE', /changed after signing/],
  ['a file the manifest names is missing', async () => {
    const d = await build('1.1.0');
    rmSync(path.join(d, 'model.onnx'));
    return d;
  }, 'EDGE_PACKAGE_INVALID', /missing/],
];

for (const [what, make, code, message] of cases) {
  t.test(`refused, and 1.0.0 keeps serving: ${what}`, async (t) => {
    const dir = await make();
    await t.rejects(running.agent.models.activate('digits', dir), { code, message }, `${what} is refused with ${code}`);
    t.equal(await servedVersion(), '1.0.0', 'inference still answers from 1.0.0');
  });
}

t.test('a correctly signed 1.1.0 takes over', async (t) => {
  await running.agent.models.activate('digits', await build('1.1.0'));
  t.equal(await servedVersion(), '1.1.0');
  // The signature is checked before any file is read (issue 26): the flipped byte and the
  // missing file carried good signatures (counted verified), then failed on their files.
  t.match(running.agent.security.status(), { packagesVerified: 4, packagesRefused: 4 });
});

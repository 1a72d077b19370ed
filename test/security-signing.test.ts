// Signed model packages: a signed package verifies, and every way of tampering with one is
// refused with its own reason before anything could load it.
import t, { type Test } from 'tap';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgeError } from '../agent/errors.js';
import {
  generateKeyPair, hashPackageFiles, keyIdOf, refusalReason, signPackage, verifyPackage,
  MANIFEST_FILE, SIGNATURE_FILE,
} from '../agent/security/signing.js';

const fleetKey = generateKeyPair();
const otherKey = generateKeyPair();

/** A small package folder: a model, a nested file, and its manifest. */
async function makePackage(t: Test, sign = true): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-pkg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'model.onnx'), Buffer.from([8, 7, 18, 4, 116, 101, 115, 116, 0, 1, 2, 3]));
  mkdirSync(path.join(dir, 'calib'));
  writeFileSync(path.join(dir, 'calib', 'scales.json'), JSON.stringify({ conv1: 0.0123 }));
  const files = await hashPackageFiles(dir);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ name: 'demo', version: '1.0.0', files }, null, 2));
  // (the list form of "files"; the object form of docs/model-package.md is tested below)
  if (sign) await signPackage(dir, fleetKey.privateKeyPem);
  return dir;
}

async function refusal(t: Test, p: Promise<unknown>): Promise<{ reason: string | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof EdgeError, 'refusal is an EdgeError');
    t.equal((err as EdgeError).code, 'EDGE_PACKAGE_SIGNATURE', 'with code EDGE_PACKAGE_SIGNATURE');
    return { reason: refusalReason(err), message: (err as Error).message };
  }
  t.fail('expected the package to be refused');
  return { reason: undefined, message: '' };
}

t.test('a signed package verifies and names its key', async (t) => {
  const dir = await makePackage(t);
  const v = await verifyPackage(dir, [fleetKey.publicKeyPem]);
  t.equal(v.ok, true);
  t.equal(v.keyId, fleetKey.keyId);
  t.equal(v.keyId, keyIdOf(fleetKey.publicKeyPem));
  t.same(v.files.map((f) => f.path).sort(), ['calib/scales.json', 'model.onnx']);
  t.same(v.manifestBytes, readFileSync(path.join(dir, MANIFEST_FILE)), 'returns the exact verified manifest bytes');
});

t.test('key rotation: any trusted key verifies, old and new side by side', async (t) => {
  const dir = await makePackage(t);
  t.equal((await verifyPackage(dir, [otherKey.publicKeyPem, fleetKey.publicKeyPem])).keyId, fleetKey.keyId);
  await signPackage(dir, otherKey.privateKeyPem);
  t.equal((await verifyPackage(dir, [otherKey.publicKeyPem, fleetKey.publicKeyPem])).keyId, otherKey.keyId);
  const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
  t.equal(r.reason, 'unknown-key', 'after rotation, a device trusting only the old key refuses the new signature');
});

t.test('an unsigned package is refused', async (t) => {
  const dir = await makePackage(t, false);
  const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
  t.equal(r.reason, 'unsigned');
  t.match(r.message, /not signed/);
});

t.test('a package signed by an unknown key is refused', async (t) => {
  const dir = await makePackage(t, false);
  await signPackage(dir, otherKey.privateKeyPem);
  const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
  t.equal(r.reason, 'unknown-key');
  t.match(r.message, new RegExp(otherKey.keyId));
});

t.test('a signature claiming a trusted keyId but made by another key is refused', async (t) => {
  const dir = await makePackage(t, false);
  await signPackage(dir, otherKey.privateKeyPem);
  const sigPath = path.join(dir, SIGNATURE_FILE);
  const sig = JSON.parse(readFileSync(sigPath, 'utf8'));
  sig.keyId = fleetKey.keyId;
  writeFileSync(sigPath, JSON.stringify(sig));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-signature');
});

t.test('no trusted keys means nothing verifies', async (t) => {
  const dir = await makePackage(t);
  t.equal((await refusal(t, verifyPackage(dir, []))).reason, 'no-trusted-keys');
  t.equal((await refusal(t, verifyPackage(dir, ['not a key']))).reason, 'bad-trusted-key');
});

t.test('a changed byte in any file is refused', async (t) => {
  for (const file of ['model.onnx', 'calib/scales.json']) {
    const dir = await makePackage(t);
    const p = path.join(dir, ...file.split('/'));
    const bytes = readFileSync(p);
    bytes[bytes.length >> 1] ^= 0x01; // one bit of one byte
    writeFileSync(p, bytes);
    const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
    t.equal(r.reason, 'file-changed', `a flipped bit in ${file}`);
    t.match(r.message, file);
  }
  const dir = await makePackage(t);
  appendFileSync(path.join(dir, 'model.onnx'), Buffer.from([0]));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'file-changed', 'an appended byte');
});

t.test('a changed byte in the manifest or the signature is refused', async (t) => {
  let dir = await makePackage(t);
  const mPath = path.join(dir, MANIFEST_FILE);
  writeFileSync(mPath, readFileSync(mPath, 'utf8').replace('"1.0.0"', '"1.0.1"'));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-signature', 'manifest edited');

  dir = await makePackage(t);
  // Re-hash a replaced model into the manifest: the hashes agree, the signature does not.
  writeFileSync(path.join(dir, 'model.onnx'), 'evil');
  const m = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'));
  m.files = await hashPackageFiles(dir);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-signature', 'file replaced and manifest re-hashed');

  dir = await makePackage(t);
  const sPath = path.join(dir, SIGNATURE_FILE);
  const sig = JSON.parse(readFileSync(sPath, 'utf8'));
  const raw = Buffer.from(sig.signature, 'base64');
  raw[10] ^= 0x80;
  sig.signature = raw.toString('base64');
  writeFileSync(sPath, JSON.stringify(sig));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-signature', 'signature bit flipped');

  dir = await makePackage(t);
  writeFileSync(sPath.replace(path.dirname(sPath), dir), '{"format":"edge-signature/1"');
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-signature-file', 'truncated signature.json');
});

t.test('a manifest naming a missing file is refused', async (t) => {
  const dir = await makePackage(t);
  unlinkSync(path.join(dir, 'calib', 'scales.json'));
  const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
  t.equal(r.reason, 'file-missing');
  t.match(r.message, 'calib/scales.json');
});

t.test('a file the manifest does not list is refused, unless the caller allows bookkeeping files', async (t) => {
  const dir = await makePackage(t);
  writeFileSync(path.join(dir, 'payload.so'), 'injected');
  const r = await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]));
  t.equal(r.reason, 'unlisted-file');
  t.match(r.message, 'payload.so');
  t.equal((await verifyPackage(dir, [fleetKey.publicKeyPem], { allowUnlisted: true })).keyId, fleetKey.keyId,
    'allowUnlisted (install folders) still verifies every listed file');
});

t.test('symlinks are refused, even to a file with the right hash', async (t) => {
  const dir = await makePackage(t);
  const outside = path.join(dir, '..', `${path.basename(dir)}-outside.onnx`);
  writeFileSync(outside, readFileSync(path.join(dir, 'model.onnx')));
  t.teardown(() => rmSync(outside, { force: true }));
  unlinkSync(path.join(dir, 'model.onnx'));
  symlinkSync(outside, path.join(dir, 'model.onnx'));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'not-a-regular-file');
});

t.test('a manifest with paths leaving the package cannot be signed or verified', async (t) => {
  for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../x', './model.onnx', 'a//b', 'c:\\x', 'a\\..\\b']) {
    const dir = await makePackage(t, false);
    writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ files: [{ path: bad, sha256: 'a'.repeat(64) }] }));
    t.equal((await refusal(t, signPackage(dir, fleetKey.privateKeyPem))).reason, 'unsafe-path', `sign refuses ${bad}`);
  }
});

t.test('malformed manifests are refused with a reason', async (t) => {
  const cases: Array<[string, string]> = [
    ['not json', 'bad-manifest'],
    ['[]', 'bad-manifest'],
    ['{"files": 3}', 'bad-manifest'],
    ['{"files": []}', 'bad-manifest'],
    ['{"files": [{"path": "model.onnx", "sha256": "xyz"}]}', 'bad-manifest'],
    ['{"files": [{"path": "model.onnx"}]}', 'bad-manifest'],
    ['{"files": [null]}', 'bad-manifest'],
    [`{"files": [{"path":"model.onnx","sha256":"${'a'.repeat(64)}"},{"path":"model.onnx","sha256":"${'a'.repeat(64)}"}]}`, 'bad-manifest'],
  ];
  for (const [text, reason] of cases) {
    const dir = await makePackage(t, false);
    writeFileSync(path.join(dir, MANIFEST_FILE), text);
    const r = await refusal(t, signPackage(dir, fleetKey.privateKeyPem));
    t.equal(r.reason, reason, `manifest ${text.slice(0, 40)}`);
  }
  const dir = await makePackage(t);
  rmSync(path.join(dir, MANIFEST_FILE));
  t.equal((await refusal(t, verifyPackage(dir, [fleetKey.publicKeyPem]))).reason, 'bad-manifest', 'missing manifest');
});

t.test('a package whose files do not match its manifest is not signed', async (t) => {
  const dir = await makePackage(t, false);
  writeFileSync(path.join(dir, 'model.onnx'), 'changed before signing');
  t.equal((await refusal(t, signPackage(dir, fleetKey.privateKeyPem))).reason, 'file-changed');
  t.equal((await refusal(t, signPackage(dir, 'garbage'))).reason, 'bad-trusted-key', 'a garbage private key');
});

t.test('the object form of "files" is accepted too', async (t) => {
  const dir = await makePackage(t, false);
  const files = await hashPackageFiles(dir);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify({ files: Object.fromEntries(files.map((f) => [f.path, { sha256: f.sha256, bytes: 1 }])) }));
  await signPackage(dir, fleetKey.privateKeyPem);
  t.equal((await verifyPackage(dir, [fleetKey.publicKeyPem])).files.length, 2);
});

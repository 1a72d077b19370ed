// Fuzzing what a device reads from a model package before trusting it: the manifest schema
// check, the signature file and manifest file-list parsers, the whole loader with the
// a signature verifier passed in (mutated manifest.json), and .edgepkg extraction (mutated
// archives). Every input is refused with a typed error, or accepted only when it is exactly
// what the fleet key signed.
import t from 'tap';
import fc from 'fast-check';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { manifestProblems } from '../agent/models/manifest.js';
import { loadPackage } from '../agent/models/package.js';
import type { SignatureVerifier } from '../agent/models/verify.js';
import { extractArchive, packArchive } from '../agent/models/archive.js';
import { generateKeyPair, manifestFiles, parseSignatureFile, signPackage, trustedKeySet, verifyManifestSignature } from '../agent/security/signing.js';
import { repoRoot } from './helpers/pki.js';
import { RUNS, asyncRefusalOf, mutated, mutatedText, refusalOf, watchUnhandled } from './helpers/fuzz.js';

const unhandled = watchUnhandled();
const work = mkdtempSync(path.join(tmpdir(), 'edge-fuzz-manifest-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const pkg = path.join(work, 'pkg');
cpSync(path.join(repoRoot, 'models', 'digits-fp32'), pkg, { recursive: true });
const key = generateKeyPair();
await signPackage(pkg, key.privateKeyPem);
const signedManifest = readFileSync(path.join(pkg, 'manifest.json'));
const keys = trustedKeySet([key.publicKeyPem]);
const verifier: SignatureVerifier = (input) => ({ verified: true, signer: verifyManifestSignature(input.manifestBytes, input.signature, keys, input.packageDir) });
const manifestText = fc.constant(signedManifest.toString('utf8'));

t.test('manifestProblems never throws and explains every problem', async (t) => {
  const check = (v: unknown): void => {
    const p = manifestProblems(v);
    if (!Array.isArray(p) || p.some((s) => typeof s !== 'string' || s.length < 5)) throw new Error(`bad problems list ${JSON.stringify(p)}`);
  };
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), check), { numRuns: RUNS });
  fc.assert(fc.property(mutatedText(manifestText), (s) => {
    let v: unknown;
    try { v = JSON.parse(s); } catch { return; }
    check(v);
  }), { numRuns: RUNS * 2 });
  t.pass(`${3 * RUNS} manifests checked`);
});

t.test('signature and file-list parsers refuse with EDGE_PACKAGE_SIGNATURE only', async (t) => {
  const codes = ['EDGE_PACKAGE_SIGNATURE'];
  const sig = readFileSync(path.join(pkg, 'manifest.sig'), 'utf8');
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutatedText(fc.constant(sig))), (s) => { refusalOf(() => parseSignatureFile(s), codes); }), { numRuns: RUNS });
  fc.assert(fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), mutatedText(manifestText)), (s) => { refusalOf(() => manifestFiles(s), codes); }), { numRuns: RUNS });
  fc.assert(fc.property(mutated(fc.constant(new Uint8Array(signedManifest))), fc.option(mutated(fc.constant(new Uint8Array(Buffer.from(sig))))), (m, s) => {
    const r = refusalOf(() => verifyManifestSignature(m, s ?? Buffer.from(sig), keys), codes);
    if (!r && !Buffer.from(m).equals(signedManifest)) throw new Error('a changed manifest verified');
  }), { numRuns: RUNS });
  t.pass(`${3 * RUNS} inputs`);
});

t.test('the loader, verifier installed: a mutated manifest.json never loads', async (t) => {
  const target = path.join(pkg, 'manifest.json');
  let loaded = 0;
  await fc.assert(fc.asyncProperty(fc.oneof(mutated(fc.constant(new Uint8Array(signedManifest))), mutatedText(manifestText).map((s) => new Uint8Array(Buffer.from(s)))), async (bytes) => {
    writeFileSync(target, bytes);
    const r = await asyncRefusalOf(() => loadPackage(pkg, { verifier }), ['EDGE_PACKAGE_INVALID', 'EDGE_PACKAGE_SIGNATURE']);
    if (!r) {
      if (!Buffer.from(bytes).equals(signedManifest)) throw new Error('a mutated manifest loaded');
      loaded++;
    }
  }), { numRuns: Math.max(500, RUNS / 2) });
  writeFileSync(target, signedManifest);
  t.equal((await loadPackage(pkg, { verifier })).signature.verified, true, 'the untouched package still loads, verified');
  t.pass(`${Math.max(500, RUNS / 2)} mutated manifests; ${loaded} were byte-identical after mutation and loaded`);
});

t.test('mutated .edgepkg archives are refused or unpack to something the loader judges', async (t) => {
  const archive = path.join(work, 'good.edgepkg');
  await packArchive(pkg, archive);
  const good = new Uint8Array(readFileSync(archive));
  let n = 0;
  await fc.assert(fc.asyncProperty(mutated(fc.constant(good)), async (bytes) => {
    const file = path.join(work, `m${n}.edgepkg`);
    const dest = path.join(work, `x${n++}`);
    writeFileSync(file, bytes);
    try {
      const r = await asyncRefusalOf(() => extractArchive(file, dest, { verifier }), ['EDGE_PACKAGE_INVALID']);
      if (!r) await asyncRefusalOf(() => loadPackage(dest, { verifier }), ['EDGE_PACKAGE_INVALID', 'EDGE_PACKAGE_SIGNATURE']);
    } finally {
      rmSync(file, { force: true });
      rmSync(dest, { recursive: true, force: true });
    }
  }), { numRuns: 300 });
  t.pass('300 mutated archives');
});

t.test('no unhandled rejections', async (t) => {
  t.same(unhandled(), []);
});

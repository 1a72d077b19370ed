// Signed model packages. A package is a folder with `manifest.json` (which lists the sha256 of
// every file in the package, docs/model-package.md) and `manifest.sig` (JSON: an ed25519
// signature over the exact bytes of manifest.json, and the id of the signing key). Signing the manifest signs every file through its hash; verifying checks
// the signature against a list of trusted keys (several, so keys can be rotated), then hashes
// every file and refuses any difference: a changed byte, a missing file, a file the manifest
// does not list, a symlink, or a path that leaves the package. Nothing is loaded before this.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgeError, Errors } from '../errors.js';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const SIGNATURE_FORMAT = 'edge-signature/1';
export interface VerifyOptions {
  /**
   * Accept files in the folder that the manifest does not list (default false). The agent's
   * install folders hold its own bookkeeping files beside the package; the loader only reads
   * listed files, so it passes true. A freshly built package is checked strictly.
   */
  allowUnlisted?: boolean;
  /** Largest manifest.json read (default MAX_MANIFEST_BYTES; an agent release lists thousands of files: MAX_RELEASE_MANIFEST_BYTES). */
  maxManifestBytes?: number;
}

/** A manifest larger than this is not a manifest (it is read whole, before anything is trusted). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** The same bound for an agent release (about 7,500 files, a 1.3 MB manifest, for 0.1.0). */
export const MAX_RELEASE_MANIFEST_BYTES = 8 * 1024 * 1024;
const MAX_SIGNATURE_BYTES = 16 * 1024;

/** Why a package was refused; stable words for `models/reported` and for tests. */
export type SignatureRefusal =
  | 'no-trusted-keys'
  | 'bad-trusted-key'
  | 'unsigned'
  | 'bad-signature-file'
  | 'unknown-key'
  | 'bad-signature'
  | 'bad-manifest'
  | 'unsafe-path'
  | 'file-missing'
  | 'file-changed'
  | 'unlisted-file'
  | 'not-a-regular-file';

export interface SignatureFile {
  format: typeof SIGNATURE_FORMAT;
  algorithm: 'ed25519';
  /** keyIdOf() of the signing public key. */
  keyId: string;
  /** base64 ed25519 signature over the bytes of manifest.json. */
  signature: string;
}

export interface ManifestFileEntry {
  path: string;
  sha256: string;
}

export interface VerifiedPackage {
  ok: true;
  keyId: string;
  /** The manifest bytes that were verified (parse these, not a second read of the file). */
  manifestBytes: Buffer;
  files: ManifestFileEntry[];
}

export interface KeyPair {
  publicKeyPem: string;
  privateKeyPem: string;
  keyId: string;
}

function refuse(pkg: string, reason: SignatureRefusal, why: string): EdgeError {
  const err = Errors.PACKAGE_SIGNATURE(pkg, why);
  (err as { details?: unknown }).details = { reason };
  return err;
}

/** The reason word of a refusal thrown by verifyPackage/signPackage, or undefined. */
export function refusalReason(err: unknown): SignatureRefusal | undefined {
  if (err instanceof EdgeError && err.code === Errors.PACKAGE_SIGNATURE.code) {
    return (err.details as { reason?: SignatureRefusal } | undefined)?.reason;
  }
  return undefined;
}

/** A new ed25519 key pair (PEM: SPKI public, PKCS#8 private). */
export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { publicKeyPem, privateKeyPem, keyId: keyIdOf(publicKey) };
}

/** A short stable name of a public key: the first 16 hex digits of sha256(SPKI DER). */
export function keyIdOf(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** Parses a list of trusted ed25519 public keys (PEM), keyed by keyId. */
export function trustedKeySet(trustedPublicKeysPem: readonly string[], what = 'trusted keys'): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const [i, pem] of trustedPublicKeysPem.entries()) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch (err) {
      throw refuse(what, 'bad-trusted-key', `trusted key #${i + 1} is not a PEM public key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw refuse(what, 'bad-trusted-key', `trusted key #${i + 1} is ${key.asymmetricKeyType}, expected ed25519`);
    }
    keys.set(keyIdOf(key), key);
  }
  return keys;
}

/**
 * The file list of a manifest. Accepts `files` as an array of {path, sha256} or as an object
 * mapping path -> sha256 (or -> {sha256}). Every path must be relative, inside the package,
 * and listed once; every sha256 is 64 lowercase hex digits. Throws a clear reason otherwise.
 */
export function manifestFiles(manifestBytes: Buffer | string, pkg = 'package'): ManifestFileEntry[] {
  const text = typeof manifestBytes === 'string' ? manifestBytes : manifestBytes.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} is not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} must be a JSON object`);
  }
  const raw = (doc as Record<string, unknown>).files;
  let pairs: Array<[unknown, unknown]>;
  if (Array.isArray(raw)) {
    pairs = raw.map((e, i) => {
      if (typeof e !== 'object' || e === null) {
        throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} files[${i}] must be an object {path, sha256}`);
      }
      const o = e as Record<string, unknown>;
      return [o.path, o.sha256];
    });
  } else if (typeof raw === 'object' && raw !== null) {
    pairs = Object.entries(raw).map(([p, v]) => [p, typeof v === 'object' && v !== null ? (v as Record<string, unknown>).sha256 : v]);
  } else {
    throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} must have "files": a list of {path, sha256} of every file in the package`);
  }
  if (pairs.length === 0) throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} lists no files`);
  const seen = new Set<string>();
  return pairs.map(([p, h], i) => {
    if (typeof p !== 'string' || p.length === 0) {
      throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} file #${i + 1} has no "path" string`);
    }
    const rel = safeRelativePath(p);
    if (!rel) throw refuse(pkg, 'unsafe-path', `${MANIFEST_FILE} names "${printable(p)}", which is not a plain relative path inside the package`);
    if (rel === MANIFEST_FILE || rel === SIGNATURE_FILE) {
      throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} must not list ${rel} itself`);
    }
    if (seen.has(rel)) throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} lists "${rel}" twice`);
    seen.add(rel);
    if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) {
      throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} entry "${rel}" needs "sha256": 64 lowercase hex digits`);
    }
    return { path: rel, sha256: h };
  });
}

/** The normalized relative path (forward slashes) if it stays inside the package, else undefined. */
function safeRelativePath(p: string): string | undefined {
  if (p.includes('\0') || p.includes('\\') || p.length > 1024) return undefined;
  if (path.posix.isAbsolute(p) || /^[A-Za-z]:/.test(p)) return undefined;
  const parts = p.split('/');
  if (parts.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  return parts.join('/');
}

function printable(s: string): string {
  const t = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return JSON.stringify(t).slice(1, -1);
}

/** sha256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every regular file under dir (relative, forward slashes), except the signature. Symlinks are refused. */
async function listPackageFiles(dir: string, pkg: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push(r);
      else throw refuse(pkg, 'not-a-regular-file', `"${printable(r)}" is not a regular file (symlinks and devices are refused)`);
    }
  };
  await walk('');
  return out.filter((f) => f !== SIGNATURE_FILE && f !== MANIFEST_FILE);
}

async function readBounded(file: string, max: number): Promise<Buffer | undefined> {
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!st.isFile()) throw new Error(`${path.basename(file)} is not a regular file`);
  if (st.size > max) throw new Error(`${path.basename(file)} is ${st.size} bytes, more than ${max}`);
  return readFile(file);
}

/** Checks that the files on disk are exactly those of the manifest, byte for byte. */
async function checkFiles(dir: string, pkg: string, files: ManifestFileEntry[], allowUnlisted = false): Promise<void> {
  const listed = new Set(files.map((f) => f.path));
  for (const f of files) {
    const full = path.join(dir, ...f.path.split('/'));
    let st;
    try {
      st = await lstat(full);
    } catch {
      throw refuse(pkg, 'file-missing', `${MANIFEST_FILE} names "${f.path}", which is not in the package`);
    }
    if (!st.isFile()) throw refuse(pkg, 'not-a-regular-file', `"${f.path}" is not a regular file (symlinks and devices are refused)`);
    const actual = await sha256File(full);
    if (actual !== f.sha256) {
      throw refuse(pkg, 'file-changed', `"${f.path}" does not match its sha256 in ${MANIFEST_FILE} (expected ${f.sha256.slice(0, 12)}..., found ${actual.slice(0, 12)}...); the file was changed after signing`);
    }
  }
  if (allowUnlisted) return;
  for (const f of await listPackageFiles(dir, pkg)) {
    if (!listed.has(f)) throw refuse(pkg, 'unlisted-file', `"${printable(f)}" is in the package but not in ${MANIFEST_FILE}; every file must be listed and signed`);
  }
}

/**
 * Signs a package folder with an ed25519 private key (PEM): checks that the manifest matches
 * the files, then writes signature.json. Refuses to sign a package whose files do not match.
 */
export async function signPackage(dir: string, privateKeyPem: string, maxManifestBytes = MAX_MANIFEST_BYTES): Promise<{ keyId: string }> {
  const pkg = dir;
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw refuse(pkg, 'bad-trusted-key', `the signing key is not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw refuse(pkg, 'bad-trusted-key', `the signing key is ${key.asymmetricKeyType}, expected ed25519`);
  const manifestBytes = await readManifest(dir, pkg, maxManifestBytes);
  const files = manifestFiles(manifestBytes, pkg);
  await checkFiles(dir, pkg, files);
  const keyId = keyIdOf(createPublicKey(key));
  const sig: SignatureFile = {
    format: SIGNATURE_FORMAT,
    algorithm: 'ed25519',
    keyId,
    signature: sign(null, manifestBytes, key).toString('base64'),
  };
  await writeFile(path.join(dir, SIGNATURE_FILE), JSON.stringify(sig, null, 2) + '\n');
  return { keyId };
}

async function readManifest(dir: string, pkg: string, limit: number): Promise<Buffer> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readBounded(path.join(dir, MANIFEST_FILE), limit);
  } catch (err) {
    throw refuse(pkg, 'bad-manifest', `cannot read ${MANIFEST_FILE}: ${(err as Error).message}`);
  }
  if (!bytes) throw refuse(pkg, 'bad-manifest', `${MANIFEST_FILE} is missing`);
  return bytes;
}

/** Parses signature.json; throws a clear reason when it is absent or malformed. */
export function parseSignatureFile(bytes: Buffer | string, pkg = 'package'): SignatureFile {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    throw refuse(pkg, 'bad-signature-file', `${SIGNATURE_FILE} is not JSON (${(err as Error).message})`);
  }
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  if (o.format !== SIGNATURE_FORMAT || o.algorithm !== 'ed25519') {
    throw refuse(pkg, 'bad-signature-file', `${SIGNATURE_FILE} must have format "${SIGNATURE_FORMAT}" and algorithm "ed25519"`);
  }
  if (typeof o.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(o.keyId)) {
    throw refuse(pkg, 'bad-signature-file', `${SIGNATURE_FILE} needs "keyId": 16 hex digits`);
  }
  if (typeof o.signature !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(o.signature)) {
    throw refuse(pkg, 'bad-signature-file', `${SIGNATURE_FILE} needs "signature": a base64 ed25519 signature (64 bytes)`);
  }
  return { format: SIGNATURE_FORMAT, algorithm: 'ed25519', keyId: o.keyId, signature: o.signature };
}

/**
 * Verifies a package folder against the trusted public keys (PEM). Returns {ok, keyId, ...}
 * or throws EdgeError EDGE_PACKAGE_SIGNATURE whose message says why and whose
 * details.reason is a SignatureRefusal word.
 */
export async function verifyPackage(dir: string, trustedPublicKeysPem: readonly string[], opts: VerifyOptions = {}): Promise<VerifiedPackage> {
  const pkg = dir;
  const keys = trustedKeySet(trustedPublicKeysPem, pkg);
  let sigBytes: Buffer | undefined;
  try {
    sigBytes = await readBounded(path.join(dir, SIGNATURE_FILE), MAX_SIGNATURE_BYTES);
  } catch (err) {
    throw refuse(pkg, 'bad-signature-file', `cannot read ${SIGNATURE_FILE}: ${(err as Error).message}`);
  }
  if (keys.size === 0 || !sigBytes) verifyManifestSignature(Buffer.alloc(0), sigBytes, keys, pkg); // throws the reason
  const manifestBytes = await readManifest(dir, pkg, opts.maxManifestBytes ?? MAX_MANIFEST_BYTES);
  const keyId = verifyManifestSignature(manifestBytes, sigBytes, keys, pkg);
  const files = manifestFiles(manifestBytes, pkg);
  await checkFiles(dir, pkg, files, opts.allowUnlisted);
  return { ok: true, keyId, manifestBytes, files };
}

/**
 * Checks the detached signature (the bytes of manifest.sig) over the given manifest bytes;
 * returns the signing keyId or throws EDGE_PACKAGE_SIGNATURE. This is the part the package
 * loader's hook needs: it has already read the manifest and checked each file's sha256.
 */
export function verifyManifestSignature(
  manifestBytes: Uint8Array,
  signatureBytes: Uint8Array | undefined,
  keys: Map<string, KeyObject>,
  pkg = 'package',
): string {
  if (keys.size === 0) throw refuse(pkg, 'no-trusted-keys', 'no trusted public keys are configured (security.trustedKeys), so no package can be verified: ' +
    'make a key pair with "edge-model keygen --out fleet", sign packages with "edge-model sign PACKAGE --key fleet.key" and list fleet.pub in security.trustedKeys ' +
    '(on a development machine only: security.requireSignedPackages false)');
  if (!signatureBytes) throw refuse(pkg, 'unsigned', `the package is not signed (no ${SIGNATURE_FILE}); sign it with "edge-model sign"`);
  if (signatureBytes.length > MAX_SIGNATURE_BYTES) throw refuse(pkg, 'bad-signature-file', `${SIGNATURE_FILE} is ${signatureBytes.length} bytes, more than ${MAX_SIGNATURE_BYTES}`);
  const sig = parseSignatureFile(Buffer.from(signatureBytes.buffer, signatureBytes.byteOffset, signatureBytes.byteLength), pkg);
  const key = keys.get(sig.keyId);
  if (!key) {
    throw refuse(pkg, 'unknown-key', `signed by key ${sig.keyId}, which is not among the trusted keys (${[...keys.keys()].join(', ')})`);
  }
  if (!verify(null, manifestBytes, key, Buffer.from(sig.signature, 'base64'))) {
    throw refuse(pkg, 'bad-signature', `the signature of ${MANIFEST_FILE} does not verify with key ${sig.keyId}; the manifest was changed after signing`);
  }
  return sig.keyId;
}

/** Writes a manifest-compatible {path, sha256} list for every file under dir (for packagers and tests). */
export async function hashPackageFiles(dir: string): Promise<ManifestFileEntry[]> {
  const files = (await listPackageFiles(dir, dir)).sort();
  const out: ManifestFileEntry[] = [];
  for (const f of files) out.push({ path: f, sha256: await sha256File(path.join(dir, ...f.split('/'))) });
  return out;
}

// The single-file form of a model package for transfer: a gzipped tar (.edgepkg) holding the
// package's files flat, at the top level. Extraction is in two streaming passes, and nothing
// is written before the second:
//   1. list every entry (plain files with plain names only: no folders, links, absolute paths
//      or ".."), keeping only the bytes of manifest.json and manifest.sig (each at most
//      MAX_MANIFEST_BYTES); check the manifest's schema and its signature; then check that
//      the archive holds exactly the files the signed manifest lists, each with the size it
//      declares, within MAX_ARCHIVE_BYTES;
//   2. write the listed files (and the manifest and signature from pass 1).
// An archive is read 16 KiB at a time, so a highly compressed entry is inflated a few MB at a
// time and thrown away as it goes (and tar refuses a ratio above 1000:1 outright): the memory
// this takes is bounded by a constant, not by what the archive says it holds. A refused
// archive leaves nothing behind. The files' sha256 are checked by loadPackage, after it checks
// the signature again.
import { mkdirSync, readdirSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
// tar is imported on the first archive, not at start-up: most boots never see one.
const loadTar = (): Promise<typeof import('tar')> => import('tar');
import { EdgeError, Errors, describe } from '../errors.js';
import { MANIFEST_FILE, SIGNATURE_FILE, manifestProblems, type Manifest } from './manifest.js';
import { verifySignature, type SignatureVerdict, type SignatureVerifier } from './verify.js';

export const ARCHIVE_EXT = '.edgepkg';
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const MAX_ARCHIVE_ENTRIES = 64;
export const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;
/** Largest manifest.json or manifest.sig read into memory (before anything is verified). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Bytes of the archive read at a time: each read inflates to at most ~1000x this (16 MB). */
const READ_SIZE = 16 * 1024;

export const isArchive = (p: string): boolean => p.endsWith(ARCHIVE_EXT);

/** Packs a package folder's files (flat) into one .edgepkg file. */
export async function packArchive(dir: string, outFile: string): Promise<void> {
  const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
  if (!files.includes(MANIFEST_FILE)) throw Errors.PACKAGE_INVALID(dir, `${MANIFEST_FILE} is missing; nothing to pack`);
  await (await loadTar()).c({ gzip: true, file: outFile, cwd: dir, portable: true, noDirRecurse: true }, files);
}

/** What pass 1 keeps of an archive: names and declared sizes, and the manifest and signature bytes. */
interface ArchiveHead {
  sizes: Map<string, number>;
  manifestBytes?: Buffer;
  signature?: Buffer;
}

/** Pass 1: lists the archive, refusing anything but flat plain files; keeps only the manifest and signature bytes. */
async function readHead(file: string): Promise<ArchiveHead> {
  const problems: string[] = [];
  const sizes = new Map<string, number>();
  const kept = new Map<string, Buffer[]>();
  let total = 0;
  try {
    await (await loadTar()).t({
      file,
      strict: true,
      maxReadSize: READ_SIZE,
      onentry: (e) => {
        const name = e.path.replace(/^\.\//, '');
        if (e.type !== 'File' && e.type !== 'OldFile' && !(e.type === 'Directory' && (name === '' || name === '.' || name === './'))) {
          problems.push(`entry "${e.path}" is a ${e.type}, only plain files are allowed`);
        } else if (e.type !== 'Directory') {
          if (!PLAIN_NAME.test(name)) problems.push(`entry "${e.path}" is not a plain file name (no folders, absolute paths or "..")`);
          if (sizes.has(name)) problems.push(`entry "${name}" appears twice`);
          sizes.set(name, e.size ?? 0);
          total += e.size ?? 0;
          if ((name === MANIFEST_FILE || name === SIGNATURE_FILE)) {
            if ((e.size ?? 0) > MAX_MANIFEST_BYTES) {
              problems.push(`${name} has ${e.size} bytes, at most ${MAX_MANIFEST_BYTES} are allowed`);
            } else {
              const chunks: Buffer[] = [];
              kept.set(name, chunks);
              e.on('data', (d: Buffer) => chunks.push(d));
              return;
            }
          }
        }
        e.resume();
      },
    });
  } catch (err) {
    throw Errors.PACKAGE_INVALID(file, `not a readable ${ARCHIVE_EXT} archive (gzipped tar): ${(err as Error).message}`);
  }
  if (sizes.size > MAX_ARCHIVE_ENTRIES) problems.push(`it holds ${sizes.size} files, at most ${MAX_ARCHIVE_ENTRIES} are allowed`);
  if (total > MAX_ARCHIVE_BYTES) problems.push(`it unpacks to ${total} bytes, at most ${MAX_ARCHIVE_BYTES} are allowed`);
  if (!sizes.has(MANIFEST_FILE)) problems.push(`it has no ${MANIFEST_FILE}`);
  if (problems.length) throw Errors.PACKAGE_INVALID(file, problems.join('; '));
  const bytes = (n: string): Buffer | undefined => (kept.has(n) ? Buffer.concat(kept.get(n)!) : undefined);
  return { sizes, manifestBytes: bytes(MANIFEST_FILE), signature: bytes(SIGNATURE_FILE) };
}

/** Lists an archive and refuses anything but flat plain files; returns the names. */
export async function checkArchive(file: string): Promise<string[]> {
  return [...(await readHead(file)).sizes.keys()];
}

/**
 * The manifest of a listed archive, its schema and signature checked, and the archive's
 * entries checked against it: exactly the listed files (plus manifest.json and manifest.sig),
 * each of the size the manifest declares. Reads no listed file.
 */
async function verifyHead(file: string, head: ArchiveHead, verifier: SignatureVerifier): Promise<{ manifest: Manifest; signature: SignatureVerdict }> {
  const refuse = (problem: string): EdgeError => Errors.PACKAGE_INVALID(file, problem);
  let parsed: unknown;
  try {
    parsed = JSON.parse(head.manifestBytes!.toString('utf8'));
  } catch (err) {
    throw refuse(`${MANIFEST_FILE} is not valid JSON: ${describe(err)}`);
  }
  const problems = manifestProblems(parsed);
  if (problems.length) throw refuse(`${MANIFEST_FILE} is invalid: ${problems.join('; ')}`);
  const manifest = parsed as Manifest;
  const signature = await verifySignature(verifier, {
    packageDir: file, manifestBytes: head.manifestBytes!, signature: head.signature, name: manifest.name, version: manifest.version,
  }, file);
  // From here on the manifest is what its signer wrote (or the operator accepts unsigned packages).
  const label = `${file} (${manifest.name}@${manifest.version})`;
  const listed = Object.entries(manifest.files);
  const declared = listed.reduce((n, [, f]) => n + f.bytes, 0);
  if (declared > MAX_ARCHIVE_BYTES) throw Errors.PACKAGE_INVALID(label, `the manifest lists ${declared} bytes of files, at most ${MAX_ARCHIVE_BYTES} are allowed`);
  const bad: string[] = [];
  for (const [name, f] of listed) {
    const size = head.sizes.get(name);
    if (size === undefined) bad.push(`file ${name} is listed in the manifest but missing`);
    else if (size !== f.bytes) bad.push(`file ${name} has ${size} bytes in the archive, the manifest says ${f.bytes}`);
  }
  for (const name of head.sizes.keys()) {
    if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !manifest.files[name]) bad.push(`file ${name} is not listed in the manifest`);
  }
  if (bad.length) throw Errors.PACKAGE_INVALID(label, bad.join('; '));
  return { manifest, signature };
}

/**
 * Extracts an archive into destDir (created; must not exist or be empty), after checking its
 * signature and its entries against the signed manifest (see the top of this file). Nothing
 * is written for a refused archive; a failure while writing removes destDir.
 * `verifier` checks the signature: the agent's comes from its security policy; the controller
 * and the tools, which read a package for its manifest, pass MANIFEST_ONLY (agent/models/verify.ts).
 */
export async function extractArchive(file: string, destDir: string, opts: { verifier: SignatureVerifier }): Promise<{ manifest: Manifest; signature: SignatureVerdict }> {
  const head = await readHead(file);
  const verified = await verifyHead(file, head, opts.verifier);
  if (existsSync(destDir) && readdirSync(destDir).length) throw Errors.PACKAGE_INVALID(file, `extraction folder ${destDir} is not empty`);
  const want = new Map(Object.entries(verified.manifest.files).map(([n, f]) => [n, f.bytes]));
  mkdirSync(destDir, { recursive: true });
  try {
    writeFileSync(path.join(destDir, MANIFEST_FILE), head.manifestBytes!);
    if (head.signature) writeFileSync(path.join(destDir, SIGNATURE_FILE), head.signature);
    const wrong: string[] = [];
    await (await loadTar()).x({
      file,
      cwd: destDir,
      strict: true,
      preservePaths: false,
      maxReadSize: READ_SIZE,
      // Only the listed names, as plain files of the declared size (the archive could have
      // been replaced since pass 1); manifest and signature come from pass 1.
      filter: (p, e) => {
        const name = p.replace(/^\.\//, '');
        if (!want.has(name) || !('type' in e) || (e.type !== 'File' && e.type !== 'OldFile')) return false;
        if (e.size !== want.get(name)) { wrong.push(`file ${name} changed size while unpacking`); return false; }
        return true;
      },
    });
    for (const [n, bytes] of want) {
      const f = path.join(destDir, n);
      if (!existsSync(f)) wrong.push(`entry ${n} was not extracted`);
      else if (statSync(f).size !== bytes) wrong.push(`file ${n} has ${statSync(f).size} bytes after unpacking, the manifest says ${bytes}`);
    }
    if (wrong.length) throw Errors.PACKAGE_INVALID(file, wrong.join('; '));
  } catch (err) {
    rmSync(destDir, { recursive: true, force: true });
    if (err instanceof EdgeError) throw err;
    throw Errors.PACKAGE_INVALID(file, `could not unpack: ${describe(err)}`);
  }
  return verified;
}

// An agent release as an artifact (docs/self-update.md): a gzipped tar of the release folder
// whose top level holds manifest.json (name "edge-agent", version, arch, dataFormat and the
// sha256 of every file) and manifest.sig, the same detached ed25519 signature as a model
// package (agent/security/signing.ts). It travels like a model (agent/models/download.ts) and
// is installed like one (agent/models/install.ts: temporary folder, verify, fsync, rename,
// mark) into <root>/releases/<VERSION>. Nothing here touches `current`.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgeError, UpdateErrors, describe } from '../errors.js';
import { InstalledVersions, type InstallTarget } from '../models/install.js';
import { MANIFEST_FILE, MAX_RELEASE_MANIFEST_BYTES, SIGNATURE_FILE, hashPackageFiles, signPackage, verifyPackage } from '../security/signing.js';
import { RELEASE_INFO, RELEASES_DIR, type ReleaseInfo } from './layout.js';

const loadTar = (): Promise<typeof import('tar')> => import('tar');
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
const MAX_ENTRIES = 200_000;

/** What a device checks a release against. */
export interface ReleaseCheck {
  /** PEM public keys a release must be signed by. */
  trustedKeysPem: readonly string[];
  /** This machine's architecture (process.arch). */
  arch: string;
  /** The version running now; a release not newer is refused unless `force`. */
  currentVersion?: string;
  force?: boolean;
}

/** Compares dotted versions numerically part by part ("1.10.0" > "1.9.3"); text parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = x !== '' && y !== '' && Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

/**
 * Writes manifest.json (the release's fields and every file's sha256) and manifest.sig into a
 * release folder, then packs it into `outFile`. The folder must hold RELEASE.json.
 */
export async function packRelease(dir: string, privateKeyPem: string, outFile: string): Promise<ReleaseInfo & { sha256?: string }> {
  const info = JSON.parse(await readFile(path.join(dir, RELEASE_INFO), 'utf8')) as ReleaseInfo;
  if (!VERSION.test(String(info.version)) || typeof info.arch !== 'string') throw UpdateErrors.RELEASE_REFUSED(dir, `${RELEASE_INFO} needs "version" and "arch"`);
  await rm(path.join(dir, MANIFEST_FILE), { force: true });
  await rm(path.join(dir, SIGNATURE_FILE), { force: true });
  const files = await hashPackageFiles(dir);
  const manifest = { name: 'edge-agent', version: info.version, arch: info.arch, dataFormat: info.dataFormat ?? 1, maxDataFormat: info.maxDataFormat ?? info.dataFormat ?? 1, files };
  await writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  await signPackage(dir, privateKeyPem, MAX_RELEASE_MANIFEST_BYTES);
  const tar = await loadTar();
  await tar.c({ gzip: true, file: outFile, cwd: dir, portable: true }, [MANIFEST_FILE, SIGNATURE_FILE, ...files.map((f) => f.path)]);
  return { ...info, name: 'edge-agent' };
}

/** Unpacks a release artifact: plain files and folders only (no links, devices, absolute paths or ".."). */
export async function unpackRelease(file: string, dest: string): Promise<void> {
  const tar = await loadTar();
  const bad: string[] = [];
  let entries = 0;
  await mkdir(dest, { recursive: true });
  try {
    await tar.x({
      file,
      cwd: dest,
      strict: true,
      preserveOwner: false,
      filter: (p, e) => {
        entries++;
        const type = (e as { type?: string }).type;
        const parts = p.split('/');
        if ((type !== 'File' && type !== 'Directory') || p.startsWith('/') || parts.includes('..')) {
          bad.push(`${p} (${String(type)})`);
          return false;
        }
        return entries <= MAX_ENTRIES;
      },
    });
  } catch (err) {
    throw UpdateErrors.RELEASE_REFUSED(path.basename(file), `not a readable release archive (${describe(err)})`);
  }
  if (bad.length) throw UpdateErrors.RELEASE_REFUSED(path.basename(file), `the archive holds entries that are not plain files: ${bad.slice(0, 3).join(', ')}`);
  if (entries > MAX_ENTRIES) throw UpdateErrors.RELEASE_REFUSED(path.basename(file), `more than ${MAX_ENTRIES} entries`);
}

/** Verifies an unpacked release folder: signature, every file's sha256, the fields, the arch and the version. */
export async function verifyRelease(dir: string, check: ReleaseCheck, label = dir): Promise<ReleaseInfo> {
  let manifestBytes: Buffer;
  try {
    manifestBytes = (await verifyPackage(dir, check.trustedKeysPem, { maxManifestBytes: MAX_RELEASE_MANIFEST_BYTES })).manifestBytes;
  } catch (err) {
    // The signing module words it for a model package in a temporary folder: the reason is what counts.
    throw UpdateErrors.RELEASE_REFUSED(label, describe(err).replace(/^model package .*? refused: /, ''));
  }
  const m = JSON.parse(manifestBytes.toString('utf8')) as Partial<ReleaseInfo>;
  const info = JSON.parse(await readFile(path.join(dir, RELEASE_INFO), 'utf8').catch(() => '{}')) as Partial<ReleaseInfo>;
  if (m.name !== 'edge-agent') throw UpdateErrors.RELEASE_REFUSED(label, `its manifest names "${String(m.name)}", not "edge-agent" (a model package is not an agent release)`);
  if (typeof m.version !== 'string' || !VERSION.test(m.version)) throw UpdateErrors.RELEASE_REFUSED(label, 'its manifest has no valid "version"');
  if (info.version !== m.version || info.arch !== m.arch) {
    throw UpdateErrors.RELEASE_REFUSED(label, `${RELEASE_INFO} (${String(info.version)}, ${String(info.arch)}) differs from the signed manifest (${m.version}, ${String(m.arch)})`);
  }
  if (m.arch !== check.arch) throw UpdateErrors.RELEASE_REFUSED(`${m.version}`, `it is built for ${String(m.arch)}, this machine is ${check.arch}`);
  const dataFormat = Number(m.dataFormat ?? 1);
  if (!Number.isInteger(dataFormat) || dataFormat < 1) throw UpdateErrors.RELEASE_REFUSED(m.version, `"dataFormat" ${String(m.dataFormat)} is not a positive whole number`);
  if (!check.force && check.currentVersion !== undefined && compareVersions(m.version, check.currentVersion) <= 0) {
    throw UpdateErrors.RELEASE_REFUSED(m.version, `it is not newer than the running ${check.currentVersion} (force it to go back)`);
  }
  return { name: 'edge-agent', version: m.version, arch: m.arch, dataFormat, maxDataFormat: Number(m.maxDataFormat ?? dataFormat) };
}

/** Installs a downloaded (or local) release artifact into <root>/releases/<version>, verified; returns what it installed. */
export async function installRelease(root: string, artifact: string, target: { version: string; sha256: string }, check: ReleaseCheck): Promise<ReleaseInfo> {
  let info: ReleaseInfo | undefined;
  const versions = new InstalledVersions(root, {
    unpack: unpackRelease,
    verify: async (dir) => { info = await verifyRelease(dir, check, `${target.version}`); },
    signedName: 'edge-agent',
  });
  const m: InstallTarget = { name: RELEASES_DIR, version: target.version, sha256: target.sha256 };
  if (await versions.holds(m)) {
    // Installed before (an update killed after unpacking): checked again, not trusted blindly.
    return verifyRelease(versions.versionDir(RELEASES_DIR, target.version), check, target.version);
  }
  try {
    await versions.install(artifact, m);
  } catch (err) {
    if (err instanceof EdgeError && err.code === UpdateErrors.RELEASE_REFUSED.code) throw err;
    throw UpdateErrors.RELEASE_REFUSED(target.version, describe(err));
  }
  return info!;
}

/** Where a download of a release is kept until it is installed (resumed after a restart). */
export function partialFile(root: string, target: { version: string; sha256: string }): Promise<string> {
  return new InstalledVersions(root).partialFile({ name: RELEASES_DIR, version: target.version, sha256: target.sha256 });
}

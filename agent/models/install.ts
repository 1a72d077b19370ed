// The versions installed on this device, under dataDir/models/<name>/<version>, and the
// crash-safe install of a downloaded artifact among them. An install is atomic (temporary
// name, fsync, rename, then the "installed" mark the same way): a power cut leaves either the
// old tree or the new one, never half of one. Earlier versions stay, for rollback.
//
// A refused package keeps its code: EDGE_PACKAGE_INVALID when it is not a consistent package
// (archive, schema, sizes, hashes, graph), EDGE_PACKAGE_SIGNATURE when the verifier refuses
// its signature (agent/models/verify.ts).
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EdgeError, Errors, FleetErrors, describe } from '../errors.js';
import { extractArchive } from './archive.js';
import { sha256OfFile } from './download.js';
import { MANIFEST_FILE } from './manifest.js';
import { loadPackage } from './package.js';
import type { SignatureVerifier } from './verify.js';

/** Turns a downloaded artifact into an installable package folder (and checks it). */
export type UnpackArtifact = (artifactFile: string, destDir: string) => Promise<void>;
/** Checks a package folder (files, hashes, signature, graph); throws to refuse it. */
export type VerifyPackage = (packageDir: string) => Promise<unknown>;

/** How a downloaded .edgepkg becomes a package: unpacked, then fully loaded, with this verifier. */
export function packageSteps(verifier: SignatureVerifier): { unpack: UnpackArtifact; verify: VerifyPackage } {
  return {
    unpack: async (file, dest) => { await extractArchive(file, dest, { verifier }); },
    verify: (dir) => loadPackage(dir, { verifier }),
  };
}

/** One version to install: the desired state's name, version and artifact sha256. */
export interface InstallTarget {
  name: string;
  version: string;
  sha256: string;
}

/** The file name of an artifact installed as is (no unpack step). */
export const ARTIFACT_FILE = 'package.edgepkg';

export class InstalledVersions {
  /**
   * `unpack` and `verify` are the package steps (packageSteps()); without `unpack` an artifact
   * is installed as is, as ARTIFACT_FILE in its version folder.
   */
  constructor(readonly modelsDir: string, private readonly steps: { unpack?: UnpackArtifact; verify?: VerifyPackage; signedName?: string } = {}) {}

  versionDir(name: string, version: string): string {
    return path.join(this.modelsDir, name, version);
  }

  /** What the runtime activates for an installed version: its folder, or the artifact in it. */
  packagePath(name: string, version: string): string {
    const dir = this.versionDir(name, version);
    return this.steps.unpack ? dir : path.join(dir, ARTIFACT_FILE);
  }

  /** Where a download of this version is kept until it is installed (resumed after a restart). */
  async partialFile(m: InstallTarget): Promise<string> {
    const parent = path.join(this.modelsDir, m.name);
    await mkdir(parent, { recursive: true });
    return path.join(parent, `.${m.version}.${m.sha256.slice(0, 12)}.partial`);
  }

  isInstalled(name: string, version: string): boolean {
    const parent = path.join(this.modelsDir, name);
    return existsSync(markFile(parent, version)) && existsSync(path.join(parent, version));
  }

  /** Whether this exact artifact (by sha256) is installed as this version. */
  async holds(m: InstallTarget): Promise<boolean> {
    const dir = this.versionDir(m.name, m.version);
    try {
      const mark = JSON.parse(await readFile(markFile(path.dirname(dir), m.version), 'utf8')) as { sha256?: string };
      return mark.sha256 === m.sha256 && existsSync(dir);
    } catch {
      return false;
    }
  }

  /** The installed versions of a model. */
  list(name: string): string[] {
    try {
      return readdirSync(path.join(this.modelsDir, name)).filter((v) => !v.startsWith('.') && this.isInstalled(name, v));
    } catch {
      return [];
    }
  }

  /**
   * Unpacks and verifies `partial` into a temporary folder beside the final one, fsyncs,
   * renames it in, then writes the "installed" mark (itself by temporary name and rename), and
   * only then removes the download. A crash before the mark leaves a folder that the next
   * attempt replaces, temporary folders it removes, and the download, which it resumes.
   */
  async install(partial: string, m: InstallTarget): Promise<void> {
    const parent = path.join(this.modelsDir, m.name);
    const finalDir = this.versionDir(m.name, m.version);
    await removeInstallLeftovers(parent, m.version);
    const tmp = path.join(parent, `.${m.version}.tmp-${randomBytes(4).toString('hex')}`);
    try {
      // Re-check the bytes that will be used, not the ones that were downloaded.
      const got = await sha256OfFile(partial);
      if (got !== m.sha256) throw FleetErrors.ARTIFACT_HASH(m.sha256, got);
      if (this.steps.unpack) {
        // The download stays until the install is complete: a restart during verifying resumes
        // it (every chunk kept) instead of fetching it again.
        await this.steps.unpack(partial, tmp);
      } else {
        await mkdir(tmp);
        await rename(partial, path.join(tmp, ARTIFACT_FILE));
      }
      if (this.steps.verify) {
        try {
          await this.steps.verify(tmp);
        } catch (err) {
          // A refusal keeps its code (invalid package or bad signature); anything else is the package's problem.
          throw err instanceof EdgeError ? err : Errors.PACKAGE_INVALID(`${m.name}@${m.version}`, describe(err));
        }
      }
      if (this.steps.unpack && existsSync(path.join(tmp, MANIFEST_FILE))) {
        // The label in the desired state must be the one the (signed) manifest carries: a
        // relabelled build would be reported as a version it is not.
        const signed = JSON.parse(await readFile(path.join(tmp, MANIFEST_FILE), 'utf8')) as { name?: unknown; version?: unknown };
        // (An agent release is installed under releases/ and signed as "edge-agent": signedName.)
        const name = this.steps.signedName ?? m.name;
        if (signed.name !== name || signed.version !== m.version) {
          throw FleetErrors.VERSION_MISMATCH(`${name}@${m.version}`, `${String(signed.name)}@${String(signed.version)}`);
        }
      }
      await fsyncTree(tmp);
      await rm(finalDir, { recursive: true, force: true }); // an install that never got its mark
      await rename(tmp, finalDir);
      await fsyncPath(parent);
      const mark = markFile(parent, m.version);
      await writeFile(`${mark}.tmp`, JSON.stringify({ name: m.name, version: m.version, sha256: m.sha256, installedAt: new Date().toISOString() }) + '\n');
      await fsyncPath(`${mark}.tmp`);
      await rename(`${mark}.tmp`, mark);
      await fsyncPath(parent);
      await rm(partial, { force: true });
    } catch (err) {
      // A refused package is not kept for the next attempt either.
      await rm(tmp, { recursive: true, force: true });
      await rm(partial, { force: true });
      if (err instanceof EdgeError) throw err;
      throw FleetErrors.INSTALL(describe(err));
    }
  }
}

/** The mark beside an installed version folder: `.<version>.installed.json`. */
function markFile(parent: string, version: string): string {
  return path.join(parent, `.${version}.installed.json`);
}

/**
 * What a killed install of `version` leaves beside the installed versions: its temporary
 * folders and an unrenamed mark. The next install of that version starts without them.
 */
async function removeInstallLeftovers(parent: string, version: string): Promise<void> {
  const stale = readdirSync(parent).filter((n) => n.startsWith(`.${version}.tmp-`) || n === `.${version}.installed.json.tmp`);
  for (const n of stale) await rm(path.join(parent, n), { recursive: true, force: true });
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncTree(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await fsyncTree(p);
    else if (e.isFile()) await fsyncPath(p);
  }
  await fsyncPath(dir);
}

// The install root of a self-updating agent (docs/self-update.md):
//   <root>/releases/<VERSION>/     one unpacked, verified release each (manifest.json, manifest.sig,
//                                  RELEASE.json, bin/edge-agent, dist/, ...)
//   <root>/releases/.<VERSION>.installed.json   the mark of a complete install (agent/models/install.ts)
//   <root>/current -> releases/<VERSION>        what systemd and the supervisor start
// and the update's own state, in the agent's data directory (which every update keeps):
//   <dataDir>/update/state.json    the pending update (from, to, starts) and the last outcome
//   <dataDir>/DATA_FORMAT          the data directory's format version
// Every write here is a temporary file (or link), fsync, rename: a power cut leaves the old
// state or the new one.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, open, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UpdateErrors } from '../errors.js';

export const RELEASES_DIR = 'releases';
export const CURRENT_LINK = 'current';
export const RELEASE_INFO = 'RELEASE.json';
export const DATA_FORMAT_FILE = 'DATA_FORMAT';
/** Exit status that asks systemd (Restart=on-failure) or the supervisor to start the agent again: EX_TEMPFAIL. */
export const EXIT_RESTART = 75;

/** What a release says about itself (its signed manifest.json carries the same fields). */
export interface ReleaseInfo {
  name: 'edge-agent';
  version: string;
  arch: string;
  /** The data format this release writes (it migrates an older one forward). */
  dataFormat: number;
  /** The newest data format it can still read (default: dataFormat). */
  maxDataFormat?: number;
}

export interface PendingUpdate {
  from: string | undefined;
  to: string;
  /** Starts of `to` counted by the boot guard since the link switch. */
  starts: number;
  switchedAt: string;
}

export type UpdateOutcome = 'committed' | 'rolled-back' | 'rollback-refused' | 'refused' | 'interrupted' | 'failed';

export interface UpdateState {
  pending?: PendingUpdate;
  last?: { outcome: UpdateOutcome; version: string; from?: string; reason?: string; at: string };
}

export function releasesDir(root: string): string {
  return path.join(root, RELEASES_DIR);
}

export function releaseDir(root: string, version: string): string {
  return path.join(root, RELEASES_DIR, version);
}

/** The version `<root>/current` points at, or undefined when there is no link. */
export function currentVersion(root: string): string | undefined {
  try {
    return path.basename(readlinkSync(path.join(root, CURRENT_LINK)));
  } catch {
    return undefined;
  }
}

export function readReleaseInfo(dir: string): ReleaseInfo {
  const file = path.join(dir, RELEASE_INFO);
  let doc: Partial<ReleaseInfo>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<ReleaseInfo>;
  } catch (err) {
    throw UpdateErrors.NO_RELEASE(`${file} cannot be read (${(err as Error).message})`);
  }
  return { name: 'edge-agent', version: String(doc.version), arch: String(doc.arch), dataFormat: Number(doc.dataFormat ?? 1), maxDataFormat: doc.maxDataFormat };
}

/** Switches `<root>/current` to a release atomically: a new link under a temporary name, renamed over the old. */
export async function switchCurrent(root: string, version: string): Promise<void> {
  if (!existsSync(path.join(releaseDir(root, version), RELEASE_INFO))) {
    throw UpdateErrors.NO_RELEASE(`${releaseDir(root, version)} is not an installed release`);
  }
  const tmp = path.join(root, `.${CURRENT_LINK}.tmp-${randomBytes(4).toString('hex')}`);
  await symlink(path.join(RELEASES_DIR, version), tmp);
  try {
    await rename(tmp, path.join(root, CURRENT_LINK));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(root);
}

export function updateDir(dataDir: string): string {
  return path.join(dataDir, 'update');
}

export function readState(dataDir: string): UpdateState {
  try {
    return JSON.parse(readFileSync(path.join(updateDir(dataDir), 'state.json'), 'utf8')) as UpdateState;
  } catch {
    return {};
  }
}

export async function writeState(dataDir: string, state: UpdateState): Promise<void> {
  await mkdir(updateDir(dataDir), { recursive: true });
  await writeFileAtomic(path.join(updateDir(dataDir), 'state.json'), JSON.stringify(state, null, 2) + '\n');
}

/** The data directory's format version (1 when the file is absent: every data directory before self-update). */
export function readDataFormat(dataDir: string): number {
  try {
    const n = Number((JSON.parse(readFileSync(path.join(dataDir, DATA_FORMAT_FILE), 'utf8')) as { format?: unknown }).format);
    return Number.isInteger(n) && n > 0 ? n : 1;
  } catch {
    return 1;
  }
}

export async function writeDataFormat(dataDir: string, format: number, by: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  await writeFileAtomic(path.join(dataDir, DATA_FORMAT_FILE), JSON.stringify({ format, by, at: new Date().toISOString() }) + '\n');
}

/** Why `release` cannot read the data directory, or undefined when it can. */
export function dataFormatProblem(release: ReleaseInfo, dataDir: string): string | undefined {
  const have = readDataFormat(dataDir);
  const max = release.maxDataFormat ?? release.dataFormat;
  if (have > max) {
    return `the data directory ${dataDir} is in format ${have}, written by a newer release; ${release.version} reads formats up to ${max}`;
  }
  return undefined;
}

export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text);
  const fh = await open(tmp, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

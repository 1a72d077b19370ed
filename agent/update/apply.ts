// The steps of a self-update and of a rollback (docs/self-update.md, "Steps"), each crash-safe:
//   1. download   the artifact into <root>/releases/.<V>.<sha>.partial (resumed after a restart)
//   2. unpack     verify and install into <root>/releases/<V> (temporary folder, rename, mark)
//   3. pending    <dataDir>/update/state.json: {from, to, starts: 0}
//   4. switch     <root>/current -> releases/<V> (a temporary link renamed over the old one)
//   5. restart    the agent exits EXIT_RESTART; systemd or the supervisor starts current
//   6. gate       the boot guard counts the start; the new agent commits once healthy, or
//                 rolls back (switch to `from`, restart)
// A power cut between any two steps leaves a release that starts: before step 4 the old one
// (the pending entry, if any, names a `to` that is not current and the guard drops it), after
// it the new one under the gate.
import { copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { UpdateErrors } from '../errors.js';
import { killAtUpdateStep } from '../faults.js';
import { sha256OfFile } from '../models/download.js';
import {
  currentVersion, dataFormatProblem, readDataFormat, readReleaseInfo, readState, releaseDir, switchCurrent, writeDataFormat, writeState,
  type ReleaseInfo, type UpdateOutcome, type UpdateState,
} from './layout.js';
import { installRelease, partialFile, type ReleaseCheck } from './release.js';

export interface UpdatePaths {
  root: string;
  dataDir: string;
}

/** Steps 2-4 for an artifact already on disk (downloaded to partialFile(), or a local file). */
export async function applyRelease(p: UpdatePaths, artifact: string, target: { version: string; sha256: string }, check: ReleaseCheck): Promise<ReleaseInfo> {
  const got = await sha256OfFile(artifact);
  if (got !== target.sha256) throw UpdateErrors.RELEASE_REFUSED(target.version, `the artifact's sha256 is ${got}, expected ${target.sha256} (changed in transit or on disk)`);
  let file = artifact;
  const partial = await partialFile(p.root, target);
  if (artifact !== partial) {
    await copyFile(artifact, partial);
    file = partial;
  }
  killAtUpdateStep('downloaded');
  const from = currentVersion(p.root);
  const info = await installRelease(p.root, file, target, { ...check, currentVersion: check.currentVersion ?? from });
  killAtUpdateStep('unpacked');
  // A release that cannot read this data directory is refused before anything switches.
  const problem = dataFormatProblem(info, p.dataDir);
  if (problem) throw UpdateErrors.DATA_FORMAT(info.version, problem);
  const state = readState(p.dataDir);
  await writeState(p.dataDir, { ...state, pending: { from, to: info.version, starts: 0, switchedAt: new Date().toISOString() } });
  killAtUpdateStep('pending');
  await switchCurrent(p.root, info.version);
  killAtUpdateStep('switched');
  return info;
}

/** Records the outcome of an update and clears the pending entry. */
async function finish(p: UpdatePaths, state: UpdateState, outcome: UpdateOutcome, version: string, reason?: string): Promise<UpdateState> {
  const next: UpdateState = { last: { outcome, version, from: state.pending?.from, reason, at: new Date().toISOString() } };
  await writeState(p.dataDir, next);
  return next;
}

/**
 * Switches back to the release the pending update came from. Refused (and reported as
 * rollback-refused, the new release left in place) when that release cannot read the data
 * directory any more.
 */
export async function rollBack(p: UpdatePaths, reason: string): Promise<UpdateState> {
  const state = readState(p.dataDir);
  const pending = state.pending;
  const to = pending?.to ?? currentVersion(p.root) ?? 'unknown';
  if (!pending?.from || !existsSync(releaseDir(p.root, pending.from))) {
    return finish(p, state, 'rollback-refused', to, `${reason}; and there is no previous release to go back to`);
  }
  const previous = readReleaseInfo(releaseDir(p.root, pending.from));
  const problem = dataFormatProblem(previous, p.dataDir);
  if (problem) return finish(p, state, 'rollback-refused', to, `${reason}; rollback to ${pending.from} refused: ${problem}`);
  await switchCurrent(p.root, pending.from);
  return finish(p, state, 'rolled-back', to, reason);
}

/**
 * The boot guard, run before every start (by the supervisor, or ExecStartPre under systemd):
 * counts the starts of a pending release and rolls back once they reach maxStarts without a
 * commit. The count is in the data directory, so it survives crashes and power cuts.
 */
export async function bootGuard(p: UpdatePaths, maxStarts: number): Promise<{ action: 'none' | 'counted' | 'dropped' | 'rolled-back'; state: UpdateState }> {
  const state = readState(p.dataDir);
  const pending = state.pending;
  if (!pending) return { action: 'none', state };
  if (currentVersion(p.root) !== pending.to) {
    // Killed between writing the pending entry and switching the link: the old release runs on.
    return { action: 'dropped', state: await finish(p, state, 'interrupted', pending.to, 'the update stopped before the link switch; the previous release runs') };
  }
  if (pending.starts >= maxStarts) {
    const next = await rollBack(p, `crash loop: ${pending.starts} starts of ${pending.to} without passing the health gate`);
    return { action: 'rolled-back', state: next };
  }
  const next: UpdateState = { ...state, pending: { ...pending, starts: pending.starts + 1 } };
  await writeState(p.dataDir, next);
  return { action: 'counted', state: next };
}

/** The release this process runs from: the launcher sets EDGE_AGENT_RELEASE_DIR. */
export function runningRelease(env: NodeJS.ProcessEnv = process.env): ReleaseInfo | undefined {
  const dir = env.EDGE_AGENT_RELEASE_DIR;
  if (!dir) return undefined;
  try {
    return readReleaseInfo(dir);
  } catch {
    return undefined;
  }
}

/**
 * At start: the data directory in a format this release reads (an older one migrated forward;
 * migrations are listed in docs/self-update.md), or a clear refusal.
 */
export async function prepareDataDir(release: ReleaseInfo, dataDir: string): Promise<void> {
  const problem = dataFormatProblem(release, dataDir);
  if (problem) throw UpdateErrors.DATA_FORMAT(release.version, problem);
  if (readDataFormat(dataDir) < release.dataFormat) await writeDataFormat(dataDir, release.dataFormat, release.version);
}

/** The gate passed: the pending update is committed. */
export async function commit(p: UpdatePaths, version: string): Promise<UpdateState> {
  const state = readState(p.dataDir);
  if (state.pending?.to !== version) return state;
  return finish(p, state, 'committed', version);
}

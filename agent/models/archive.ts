// The single-file form of a model package for transfer: a gzipped tar (.edgepkg) holding the
// package's files flat, at the top level. Extraction lists the whole archive first and
// refuses it outright if any entry is not a plain file with a plain name (no folders, links,
// absolute paths or "..") or if it is too large; only then are the files written.
import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
// tar is imported on the first archive, not at start-up: most boots never see one.
const loadTar = (): Promise<typeof import('tar')> => import('tar');
import { Errors } from '../errors.js';
import { MANIFEST_FILE } from './manifest.js';

export const ARCHIVE_EXT = '.edgepkg';
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export const MAX_ARCHIVE_ENTRIES = 64;
export const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;

export const isArchive = (p: string): boolean => p.endsWith(ARCHIVE_EXT);

/** Packs a package folder's files (flat) into one .edgepkg file. */
export async function packArchive(dir: string, outFile: string): Promise<void> {
  const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
  if (!files.includes(MANIFEST_FILE)) throw Errors.PACKAGE_INVALID(dir, `${MANIFEST_FILE} is missing; nothing to pack`);
  await (await loadTar()).c({ gzip: true, file: outFile, cwd: dir, portable: true, noDirRecurse: true }, files);
}

/** Lists an archive and refuses anything but flat plain files; returns the names. */
export async function checkArchive(file: string): Promise<string[]> {
  const problems: string[] = [];
  const names: string[] = [];
  let total = 0;
  try {
    await (await loadTar()).t({
      file,
      strict: true,
      onentry: (e) => {
        const name = e.path.replace(/^\.\//, '');
        if (e.type !== 'File' && e.type !== 'OldFile' && !(e.type === 'Directory' && (name === '' || name === '.' || name === './'))) {
          problems.push(`entry "${e.path}" is a ${e.type}, only plain files are allowed`);
        } else if (e.type !== 'Directory') {
          if (!PLAIN_NAME.test(name)) problems.push(`entry "${e.path}" is not a plain file name (no folders, absolute paths or "..")`);
          if (names.includes(name)) problems.push(`entry "${name}" appears twice`);
          names.push(name);
          total += e.size ?? 0;
        }
        e.resume();
      },
    });
  } catch (err) {
    throw Errors.PACKAGE_INVALID(file, `not a readable ${ARCHIVE_EXT} archive (gzipped tar): ${(err as Error).message}`);
  }
  if (names.length > MAX_ARCHIVE_ENTRIES) problems.push(`it holds ${names.length} files, at most ${MAX_ARCHIVE_ENTRIES} are allowed`);
  if (total > MAX_ARCHIVE_BYTES) problems.push(`it unpacks to ${total} bytes, at most ${MAX_ARCHIVE_BYTES} are allowed`);
  if (!names.includes(MANIFEST_FILE)) problems.push(`it has no ${MANIFEST_FILE}`);
  if (problems.length) throw Errors.PACKAGE_INVALID(file, problems.join('; '));
  return names;
}

/** Extracts a checked archive into destDir (created; must be empty). */
export async function extractArchive(file: string, destDir: string): Promise<void> {
  const names = new Set(await checkArchive(file));
  if (existsSync(destDir) && readdirSync(destDir).length) throw Errors.PACKAGE_INVALID(file, `extraction folder ${destDir} is not empty`);
  mkdirSync(destDir, { recursive: true });
  await (await loadTar()).x({
    file,
    cwd: destDir,
    strict: true,
    preservePaths: false,
    // Second line of defence: only the names checked above, as plain files.
    filter: (p, e) => names.has(p.replace(/^\.\//, '')) && 'type' in e && (e.type === 'File' || e.type === 'OldFile'),
  });
  for (const n of names) {
    if (!existsSync(path.join(destDir, n))) throw Errors.PACKAGE_INVALID(file, `entry ${n} was not extracted`);
  }
}

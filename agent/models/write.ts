// Writes a model package folder: the files, then manifest.json with their sha256 and size
// filled in (build scripts and the compression toolkit use this; the agent only reads).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from './hash.js';
import { MANIFEST_FILE, PACKAGE_FORMAT, manifestProblems, type Manifest } from './manifest.js';

export type ManifestDraft = Omit<Manifest, 'files' | 'format'>;

export function writePackage(dir: string, draft: ManifestDraft, files: Record<string, Uint8Array>): Manifest {
  mkdirSync(dir, { recursive: true });
  const listed: Manifest['files'] = {};
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), bytes);
    listed[name] = { sha256: sha256(bytes), bytes: bytes.length };
  }
  const manifest = { format: PACKAGE_FORMAT, ...draft, files: listed } as Manifest;
  const problems = manifestProblems(manifest);
  if (problems.length) throw new Error(`refusing to write package ${dir}: ${problems.join('; ')}`);
  writeFileSync(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

// edge-fleet publish: stores a model artifact (.edgepkg, or a package folder packed into
// one) in the controller database as sha256-checked chunks that `serve` hands out.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { extractArchive, packArchive } from '../agent/models/archive.js';
import { MANIFEST_FILE, SIGNATURE_FILE } from '../agent/models/manifest.js';
import { MANIFEST_ONLY } from '../agent/models/verify.js';
import type { ArtifactInfo, FleetStore } from './store.js';
import type { ControllerStore } from './store/types.js';

export const DEFAULT_CHUNK_SIZE = 256 * 1024;

export interface PublishOptions {
  chunkSize?: number;
  /** Must match the package's manifest when given (checked; a relabelled package is refused). */
  name?: string;
  version?: string;
}

export interface Published extends ArtifactInfo {
  /** The package carries a signature (manifest.sig); devices that require one refuse it otherwise. */
  signed: boolean;
}

/** Stores bytes as an artifact; returns what `deploy` puts in the desired state. */
type ArtifactMeta = { name: string; version: string; chunkSize?: number; signature?: string | null };

/** An artifact's row and its chunks, from its bytes. */
function chunked(bytes: Buffer, meta: ArtifactMeta): { info: Omit<ArtifactInfo, 'publishedAt'>; part: (i: number) => Buffer } {
  const chunkSize = meta.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1024 || chunkSize > 16 * 1024 * 1024) {
    throw new Error(`chunk size must be 1 KiB..16 MiB, got ${chunkSize}`);
  }
  const n = Math.ceil(bytes.length / chunkSize);
  const part = (i: number): Buffer => bytes.subarray(i * chunkSize, Math.min(bytes.length, (i + 1) * chunkSize));
  const chunks = Array.from({ length: n }, (_, i) => createHash('sha256').update(part(i)).digest('hex'));
  const info = {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    name: meta.name,
    version: meta.version,
    size: bytes.length,
    chunkSize,
    chunks,
    signature: meta.signature ?? null,
  };
  return { info, part };
}

export function storeArtifact(store: FleetStore, bytes: Buffer, meta: ArtifactMeta): ArtifactInfo {
  const { info, part } = chunked(bytes, meta);
  store.putArtifact(info, part);
  return store.artifact({ sha256: info.sha256 })!;
}

/** storeArtifact for either store (the SQLite FleetStore or a ControllerStore such as PostgreSQL). */
async function storeArtifactIn(store: FleetStore | ControllerStore, bytes: Buffer, meta: ArtifactMeta): Promise<ArtifactInfo> {
  const { info, part } = chunked(bytes, meta);
  await store.putArtifact(info, part);
  return (await store.artifact({ sha256: info.sha256 }))!;
}

export async function publishPackage(store: FleetStore | ControllerStore, pkg: string, opts: PublishOptions = {}): Promise<Published> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'edge-fleet-pub-'));
  try {
    let archive = pkg;
    if (statSync(pkg).isDirectory()) {
      archive = path.join(tmp, 'package.edgepkg');
      await packArchive(pkg, archive);
    }
    // Name and version come from the package itself (and what is not a package is refused):
    // a label that differs from the manifest's would make devices report a version they do
    // not run, so it is refused here (and by the device).
    const dir = path.join(tmp, 'x');
    await extractArchive(archive, dir, { verifier: MANIFEST_ONLY });
    const manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as { name?: string; version?: string };
    for (const [key, given] of [['name', opts.name], ['version', opts.version]] as const) {
      if (given !== undefined && given !== manifest[key]) {
        throw new Error(`${pkg}: --${key} ${given} differs from the ${key} in its ${MANIFEST_FILE} (${String(manifest[key])}); a device installs and reports what the signed manifest says, so publish it as ${manifest.name}@${manifest.version} or build the package with that ${key}`);
      }
    }
    const name = manifest.name;
    const version = manifest.version;
    if (!name || !version) throw new Error(`${pkg}: ${MANIFEST_FILE} has no name/version`);
    const signed = existsSync(path.join(dir, SIGNATURE_FILE));
    return { ...(await storeArtifactIn(store, readFileSync(archive), { name, version, chunkSize: opts.chunkSize })), signed };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// Hostile .edgepkg archives built by streaming (nothing large is written but the archive):
// tar headers by hand (tar's Header), file bodies from generators, gzip at level 9. A file
// of zeros compresses about 1000:1, so a 900 MiB entry costs about 1 MB of archive.
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc } from 'node:zlib';
import { Header } from 'tar';

export interface ArchiveEntry {
  name: string;
  /** The body: bytes, or `zeros` of that many bytes (streamed). */
  bytes?: Uint8Array;
  zeros?: number;
  /** Bytes the tar header declares (default: the body's length). */
  declaredSize?: number;
}

const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

/** sha256 of `n` zero bytes, computed in 1 MiB steps. */
export function sha256OfZeros(n: number): string {
  const h = createHash('sha256');
  for (let left = n; left > 0; left -= ZERO_CHUNK.length) h.update(left >= ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, left));
  return h.digest('hex');
}

async function* tarStream(entries: ArchiveEntry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const size = e.bytes ? e.bytes.length : e.zeros ?? 0;
    const h = new Header({ path: e.name, mode: 0o644, uid: 0, gid: 0, size: e.declaredSize ?? size, mtime: new Date(0), type: 'File' });
    h.encode();
    yield h.block!;
    if (e.bytes) yield Buffer.from(e.bytes);
    else for (let left = size; left > 0; left -= ZERO_CHUNK.length) yield left >= ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, left);
    const pad = (512 - (size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

/** Writes a gzipped tar of `entries` to `file`, in this order. */
export async function writeArchive(file: string, entries: ArchiveEntry[], level: number = zc.Z_BEST_COMPRESSION): Promise<void> {
  await pipeline(Readable.from(tarStream(entries)), createGzip({ level }), createWriteStream(file));
}

/**
 * The package of issue 26: the digits model's manifest plus `weights.bin`, `zeroBytes` of
 * zeros listed with its true sha256, and no signature. The zeros come first in the archive,
 * so a loader must get past them before it even sees the manifest. At gzip level 9 zeros
 * compress about 1030:1 (over tar's decompression-ratio limit of 1000), at level 1 about
 * 230:1 (under it: only the signature can refuse that one early).
 */
export async function zeroBombPackage(file: string, pkgDir: string, zeroBytes: number, level: number = zc.Z_BEST_COMPRESSION): Promise<{ manifest: Record<string, any> }> {
  const manifest = JSON.parse(readFileSync(path.join(pkgDir, 'manifest.json'), 'utf8')) as Record<string, any>;
  manifest.files = { ...manifest.files, 'weights.bin': { sha256: sha256OfZeros(zeroBytes), bytes: zeroBytes } };
  await writeArchive(file, [
    { name: 'weights.bin', zeros: zeroBytes },
    { name: 'manifest.json', bytes: Buffer.from(JSON.stringify(manifest, null, 2)) },
    { name: 'model.onnx', bytes: readFileSync(path.join(pkgDir, 'model.onnx')) },
  ], level);
  return { manifest };
}

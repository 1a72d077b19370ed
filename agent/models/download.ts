// Downloads a model artifact over the broker, chunk by chunk (docs/protocol.md, "Artifacts").
// The device asks; the controller answers. Each chunk is checked against the manifest's
// sha256 before it is written, the whole file against the desired state's sha256 at the
// end. A partial file survives a dropped link or a restart: the next attempt re-hashes it
// and continues after the last chunk that still verifies.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { FleetErrors } from '../errors.js';
import type { Frame } from '../../protocol/frame.js';

export interface ArtifactManifest {
  sha256: string;
  size: number;
  chunkSize: number;
  /** sha256 (hex) of every chunk, in order. */
  chunks: string[];
}

export interface ArtifactResponseHeader {
  id: string;
  ok: boolean;
  op?: 'manifest' | 'chunk';
  sha256?: string;
  index?: number;
  manifest?: ArtifactManifest;
  error?: { code: string; message: string };
}

/** Sends one artifact request and resolves with its response frame. */
export type ArtifactRequest = (body: { op: 'manifest' | 'chunk'; sha256: string; index?: number }, timeoutMs: number) => Promise<Frame<ArtifactResponseHeader>>;

export interface DownloadOptions {
  /** Chunk requests outstanding at once. */
  window: number;
  timeoutMs: number;
  /** Attempts per chunk (a bad hash or a timeout costs one). */
  attempts: number;
  onProgress?: (p: { done: number; total: number; resumedFrom: number }) => void;
}

export interface DownloadResult {
  manifest: ArtifactManifest;
  resumedFrom: number;
  chunksFetched: number;
  retries: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

function checkManifest(m: ArtifactManifest | undefined, want: { sha256: string; size?: number }): ArtifactManifest {
  if (!m || typeof m !== 'object') throw FleetErrors.ARTIFACT('the manifest response carried no manifest');
  if (m.sha256 !== want.sha256) throw FleetErrors.ARTIFACT(`manifest is for ${String(m.sha256)}, asked for ${want.sha256}`);
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw FleetErrors.ARTIFACT(`manifest size ${String(m.size)} is not a byte count`);
  if (want.size !== undefined && m.size !== want.size) throw FleetErrors.ARTIFACT(`manifest size ${m.size} differs from the desired size ${want.size}`);
  if (!Number.isSafeInteger(m.chunkSize) || m.chunkSize < 1024 || m.chunkSize > 16 * 1024 * 1024) {
    throw FleetErrors.ARTIFACT(`manifest chunkSize ${String(m.chunkSize)} is outside 1 KiB..16 MiB`);
  }
  const n = Math.ceil(m.size / m.chunkSize);
  if (!Array.isArray(m.chunks) || m.chunks.length !== n || !m.chunks.every((h) => typeof h === 'string' && HEX64.test(h))) {
    throw FleetErrors.ARTIFACT(`manifest must list ${n} chunk sha256 values (hex)`);
  }
  return m;
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function downloadArtifact(
  request: ArtifactRequest,
  want: { sha256: string; size?: number },
  partialFile: string,
  opts: DownloadOptions,
): Promise<DownloadResult> {
  const res = await request({ op: 'manifest', sha256: want.sha256 }, opts.timeoutMs);
  if (!res.header.ok) throw FleetErrors.ARTIFACT(`controller refused the manifest: ${res.header.error?.code ?? ''} ${res.header.error?.message ?? ''}`.trim());
  const manifest = checkManifest(res.header.manifest, want);
  const total = manifest.chunks.length;
  const chunkLen = (i: number): number => Math.min(manifest.chunkSize, manifest.size - i * manifest.chunkSize);

  const fh = await open(partialFile, 'a+').then(async (h) => {
    await h.close();
    return open(partialFile, 'r+');
  });
  let resumedFrom = 0;
  let retries = 0;
  let fetched = 0;
  try {
    // Resume: keep the leading chunks that still verify, drop the rest.
    const have = (await fh.stat()).size;
    const buf = Buffer.alloc(manifest.chunkSize);
    let kept = 0;
    while (resumedFrom < total) {
      const len = chunkLen(resumedFrom);
      if (kept + len > have) break;
      const { bytesRead } = await fh.read(buf, 0, len, kept);
      if (bytesRead !== len || sha256(buf.subarray(0, len)) !== manifest.chunks[resumedFrom]) break;
      resumedFrom++;
      kept += len;
    }
    // The bytes kept, not chunks x chunkSize: a complete file (a restart after the download,
    // during verifying) ends with a short chunk, and truncating past it pads it with zeros.
    await fh.truncate(kept);
    opts.onProgress?.({ done: resumedFrom, total, resumedFrom });

    let next = resumedFrom;
    let done = resumedFrom;
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < total) {
        const i = next++;
        for (let attempt = 1; ; attempt++) {
          try {
            const r = await request({ op: 'chunk', sha256: want.sha256, index: i }, opts.timeoutMs);
            if (!r.header.ok) throw FleetErrors.ARTIFACT(`controller refused chunk ${i}: ${r.header.error?.code ?? ''} ${r.header.error?.message ?? ''}`.trim());
            if (r.header.index !== i) throw FleetErrors.ARTIFACT(`asked for chunk ${i}, got ${String(r.header.index)}`);
            if (r.body.length !== chunkLen(i)) throw FleetErrors.ARTIFACT(`chunk ${i} has ${r.body.length} bytes, expected ${chunkLen(i)}`);
            const got = sha256(r.body);
            if (got !== manifest.chunks[i]) throw FleetErrors.CHUNK_HASH(i, manifest.chunks[i], got);
            await fh.write(r.body, 0, r.body.length, i * manifest.chunkSize);
            fetched++;
            break;
          } catch (err) {
            if (attempt >= opts.attempts || failure !== undefined) {
              failure ??= err;
              return;
            }
            retries++;
          }
        }
        done++;
        opts.onProgress?.({ done, total, resumedFrom });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.window) }, worker));
    if (failure !== undefined) throw failure;
    await fh.sync();
  } finally {
    await fh.close();
  }
  const whole = await sha256OfFile(partialFile);
  if (whole !== want.sha256) {
    await rm(partialFile, { force: true });
    throw FleetErrors.ARTIFACT_HASH(want.sha256, whole);
  }
  const size = (await stat(partialFile)).size;
  if (size !== manifest.size) throw FleetErrors.ARTIFACT(`downloaded ${size} bytes, manifest says ${manifest.size}`);
  return { manifest, resumedFrom, chunksFetched: fetched, retries };
}

// Resuming an artifact download from the partial file a killed agent left behind. The
// controller is a function answering from the artifact's bytes; it counts the chunks served.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { downloadArtifact, sha256, type ArtifactManifest, type ArtifactRequest } from '../agent/models/download.js';

const CHUNK = 1024;

function artifact(size: number): { bytes: Buffer; manifest: ArtifactManifest } {
  const bytes = randomBytes(size);
  const chunks: string[] = [];
  for (let o = 0; o < size; o += CHUNK) chunks.push(sha256(bytes.subarray(o, o + CHUNK)));
  return { bytes, manifest: { sha256: sha256(bytes), size, chunkSize: CHUNK, chunks } };
}

function controller(a: { bytes: Buffer; manifest: ArtifactManifest }): { request: ArtifactRequest; served: number[] } {
  const served: number[] = [];
  const request: ArtifactRequest = async (body) => {
    if (body.op === 'manifest') return { header: { id: 'm', ok: true, op: 'manifest', manifest: a.manifest }, body: Buffer.alloc(0) };
    served.push(body.index!);
    return { header: { id: 'c', ok: true, op: 'chunk', index: body.index }, body: a.bytes.subarray(body.index! * CHUNK, (body.index! + 1) * CHUNK) };
  };
  return { request, served };
}

const opts = { window: 1, timeoutMs: 1000, attempts: 2 };

// Sizes: a short last chunk (the case a kill during verifying hit), whole chunks, one short chunk.
for (const size of [10 * CHUNK + 350, 8 * CHUNK, 700]) {
  t.test(`a complete partial file of ${size} bytes is kept as it is`, async (t) => {
    const a = artifact(size);
    const file = path.join(t.testdir(), 'a.partial');
    writeFileSync(file, a.bytes);
    const { request, served } = controller(a);
    const res = await downloadArtifact(request, { sha256: a.manifest.sha256, size }, file, opts);
    t.equal(res.resumedFrom, a.manifest.chunks.length, 'every chunk verified and kept');
    t.same(served, [], 'no chunk fetched again');
    t.equal(statSync(file).size, size, 'not padded past its size');
    t.ok(readFileSync(file).equals(a.bytes), 'the same bytes');
  });
}

t.test('a partial file with a damaged chunk resumes at that chunk', async (t) => {
  const a = artifact(10 * CHUNK + 350);
  const file = path.join(t.testdir(), 'a.partial');
  const damaged = Buffer.from(a.bytes);
  damaged[6 * CHUNK + 3] ^= 0xff;
  writeFileSync(file, damaged);
  const { request, served } = controller(a);
  const res = await downloadArtifact(request, { sha256: a.manifest.sha256, size: a.bytes.length }, file, opts);
  t.equal(res.resumedFrom, 6, 'chunks 0-5 kept');
  t.same(served, [6, 7, 8, 9, 10], 'the rest fetched');
  t.ok(readFileSync(file).equals(a.bytes), 'the file is the artifact');
});

t.test('a partial file longer than the artifact is cut to it', async (t) => {
  const a = artifact(3 * CHUNK + 10);
  const file = path.join(t.testdir(), 'a.partial');
  writeFileSync(file, Buffer.concat([a.bytes, Buffer.alloc(CHUNK)]));
  const { request, served } = controller(a);
  await downloadArtifact(request, { sha256: a.manifest.sha256, size: a.bytes.length }, file, opts);
  t.same(served, [], 'no chunk fetched again');
  t.ok(readFileSync(file).equals(a.bytes), 'the file is the artifact');
});

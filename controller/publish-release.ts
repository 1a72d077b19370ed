// edge-fleet publish-release: stores an agent release artifact (made by "edge-agent release
// pack": a gzipped tar with a signed manifest.json at its top) as chunks, like a model, under
// the name edge-agent-linux-<arch> and the release's version (protocol/agent-release.ts).
// The controller reads the manifest for its labels only; devices verify the signature, every
// file's sha256, the architecture and the data format (agent/update/release.ts).
import { readFileSync } from 'node:fs';
import { agentReleaseName } from '../protocol/agent-release.js';
import { storeArtifact, type Published } from './publish.js';
import type { FleetStore } from './store.js';

const MAX_MANIFEST = 64 * 1024 * 1024;

/** The top-level manifest.json and whether manifest.sig is there, read from the archive. */
async function readReleaseManifest(file: string): Promise<{ manifest: Record<string, unknown>; signed: boolean }> {
  const tar = await import('tar');
  let text = '';
  let signed = false;
  await tar.t({
    file,
    onReadEntry: (e) => {
      const p = e.path.replace(/^\.\//, '');
      if (p === 'manifest.sig') signed = true;
      if (p === 'manifest.json' && e.size < MAX_MANIFEST) e.on('data', (d: Buffer) => { text += d.toString('utf8'); });
      else e.resume();
    },
  });
  try {
    return { manifest: JSON.parse(text) as Record<string, unknown>, signed };
  } catch {
    throw new Error(`${file} has no readable manifest.json at its top: not an agent release (make one with "edge-agent release pack")`);
  }
}

export async function publishRelease(store: FleetStore, file: string, opts: { chunkSize?: number } = {}): Promise<Published & { arch: string }> {
  const { manifest, signed } = await readReleaseManifest(file);
  if (manifest.name !== 'edge-agent') throw new Error(`${file}: its manifest names "${String(manifest.name)}", not "edge-agent": publish a model package with "edge-fleet publish"`);
  const version = manifest.version;
  const arch = manifest.arch;
  if (typeof version !== 'string' || typeof arch !== 'string' || !/^[a-z0-9]+$/.test(arch)) throw new Error(`${file}: its manifest needs "version" and "arch"`);
  const art = storeArtifact(store, readFileSync(file), { name: agentReleaseName(arch), version, chunkSize: opts.chunkSize });
  return { ...art, signed, arch };
}
